"""The training loop: loss and metrics by hand, determinism, exact resume, checkpoints."""

import math
from dataclasses import replace
from fractions import Fraction

import pytest
import torch

from ionops.datasets.loading import load_dataset
from ionops.errors import UserError
from ionops.models import FNO, FNOArchitecture
from ionops.models import relative_errors as m
from ionops.models.operator import metrics as om
from ionops.models.operator.objective import OperatorObjective
from ionops.training import TrainSettings, load_checkpoint, train


def test_relative_errors_by_hand():
    true = torch.tensor([[[3.0, 4.0], [1.0, 0.0]]])  # (batch 1, 2 states, 2 points)
    pred = torch.tensor([[[3.0, 1.0], [2.0, 0.0]]])
    torch.testing.assert_close(m.rel_l2(pred, true), torch.tensor([[3.0 / 5.0, 1.0]]))
    torch.testing.assert_close(m.rel_l1(pred, true), torch.tensor([[3.0 / 7.0, 1.0]]))
    # the loss averages over state variables and over the batch
    batch = torch.cat([pred, true])
    torch.testing.assert_close(om.loss(batch, torch.cat([true, true])), torch.tensor(0.4))


def test_errors_are_undefined_not_huge_where_the_truth_vanishes():
    # zero; FHN's no-stimulus V (0.002 against a typical 1: 4-65x relative errors before); a
    # trajectory of the typical size
    true = torch.tensor([[[0.0, 0.0, 0.0, 0.0]], [[0.002, 0.002, -0.002, 0.002]],
                         [[1.0, 2.0, 1.0, 0.0]]])  # fmt: skip
    pred = torch.ones(3, 1, 4)
    typical = torch.ones(1, 4)  # a variable of size 1: norms below 1 % of it are near zero
    for metric in (
        m.rel_l1(pred, true, typical),
        m.rel_l2(pred, true, typical),
        m.rel_h1(pred, true, 1.0, typical),
        om.rel_h1_paper(pred, true, typical),
    ):
        assert torch.isnan(metric[:2]).all() and torch.isfinite(metric[2]).all()  # fmt: skip
    assert torch.isfinite(om.loss(pred, true))
    rms = m.rms(pred, true)  # the absolute error measures every sample, in the state's unit
    torch.testing.assert_close(rms[:, 0], torch.tensor([1.0, (0.998**2 * 3 + 1.002**2) ** 0.5 / 2,
                                                        (0 + 1 + 0 + 1) ** 0.5 / 2]))  # fmt: skip


def test_h1_uses_the_derivative_in_physical_time():
    dt = 0.5  # ms
    t = torch.arange(5) * dt
    true = (2.0 * t + 1.0)[None, None]  # dy/dt = 2 per ms
    pred = (3.0 * t + 1.0)[None, None]  # error t, de/dt = 1 per ms
    numerator = (t**2).sum() + 5 * 1.0**2
    denominator = ((2 * t + 1) ** 2).sum() + 5 * 2.0**2
    expected = math.sqrt(numerator / denominator)
    assert m.rel_h1(pred, true, dt).item() == pytest.approx(expected, rel=1e-6)
    # on a grid ten times coarser in time units the derivative term shrinks accordingly
    assert m.rel_h1(pred, true, dt * 10).item() != pytest.approx(expected, rel=1e-3)


def test_paper_h1_pools_variables_with_integer_wavenumbers():
    n_t = 16
    x = torch.arange(n_t) / n_t
    true = torch.stack([torch.sin(2 * torch.pi * x), torch.cos(2 * torch.pi * x)])[None]
    pred = true * 1.1
    # a uniform 10 % scaling is 10 % in any weighted norm
    assert om.rel_h1_paper(pred, true).item() == pytest.approx(0.1, rel=1e-5)
    assert om.rel_h1_paper(pred, true).shape == (1,)


@pytest.fixture(scope="module")
def data(hh_dataset):
    return load_dataset(hh_dataset, "per_time")


@pytest.fixture
def objective(data):
    return OperatorObjective(data)


def _model(seed: int = 0) -> FNO:
    torch.manual_seed(seed)
    return FNO(FNOArchitecture(8, 2, 6, "gelu", 4, "mlp", 4))


SETTINGS = TrainSettings(learning_rate=3e-3, weight_decay=1e-4, gamma=0.9, step_size=2,
                         batch_size=8, epochs=4, seed=5, eval_splits=("validation",))  # fmt: skip


def test_training_lowers_the_loss_and_reports_every_metric(data, objective):
    result = train(_model(), objective, SETTINGS, family="fno")
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0]
    final = result.final
    for key in (
        "validation/rel_l2",
        "validation/rel_h1",
        "validation/phys_rel_l1",
        "validation/rel_l2/V",
        "validation/phys_rel_h1/n",
        "validation/rel_h1_paper",
    ):
        assert key in final and math.isfinite(final[key])  # fmt: skip
    assert result.per_sample["validation"]["rel_l2"].shape == (len(data.splits["validation"]), 4)
    assert result.parameter_count == _model().parameter_count()
    assert result.peak_memory_bytes > 0 and result.train_seconds > 0
    assert result.history[-1]["learning_rate"] == pytest.approx(3e-3 * 0.9**2)


@pytest.mark.parametrize("normalisation", ["per_variable", "none"])
def test_other_normalisations_evaluate_in_physical_units(hh_dataset, normalisation):
    """Statistics per variable, or none, are one column: the errors in physical units still
    take the whole grid (the H1 norm's derivative crashed on one column)."""
    data = load_dataset(hh_dataset, normalisation)
    model = _model().eval()
    errors = OperatorObjective(data).evaluate(model, "validation")
    split, normalizer = data.splits["validation"], data.target_normalizer
    with torch.no_grad():
        physical = normalizer.decode(model(split.inputs).float())
    truth = normalizer.decode(split.targets)
    expected = torch.linalg.vector_norm(physical - truth, dim=-1) / torch.linalg.vector_norm(
        truth, dim=-1
    )
    defined = torch.isfinite(errors["phys_rel_l2"])  # NaN: a truth near zero (no stimulus)
    assert defined.float().mean() > 0.5
    assert torch.allclose(errors["phys_rel_l2"][defined], expected[defined], rtol=1e-4)
    assert torch.equal(torch.isfinite(errors["phys_rel_h1"]), defined)


def test_the_cosine_schedule_falls_from_the_learning_rate_to_zero(data, objective):
    settings = replace(SETTINGS, scheduler="cosine", epochs=4, eval_splits=())
    rates = [
        row["learning_rate"] for row in train(_model(), objective, settings, family="fno").history
    ]
    cosine = [3e-3 * (1 + math.cos(math.pi * epoch / 4)) / 2 for epoch in range(1, 5)]
    assert rates == pytest.approx(cosine, abs=1e-12) and rates[-1] == pytest.approx(0.0)


def test_final_splits_are_evaluated_after_the_last_epoch_only(data, objective):
    settings = TrainSettings(**{**SETTINGS.__dict__, "epochs": 2, "final_splits": ("train",)})
    result = train(_model(), objective, settings, family="fno")
    first, last = result.history
    assert "validation/rel_l2" in first and not any(k.startswith("train/") for k in first)
    assert math.isfinite(last["train/rel_l2"]) and "validation/rel_l2" in last
    assert set(result.per_sample) == {"train", "validation"}


def test_same_seed_same_weights(data, objective):
    first, second = _model(), _model()
    train(first, objective, SETTINGS, family="fno")
    train(second, objective, SETTINGS, family="fno")
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_resume_reproduces_the_uninterrupted_run_exactly(data, objective, tmp_path):
    straight = _model()
    train(straight, objective, SETTINGS, family="fno")

    interrupted = _model()
    checkpoint = tmp_path / "checkpoint.pt"
    half = TrainSettings(**{**SETTINGS.__dict__, "epochs": 2})
    train(interrupted, objective, half, family="fno", checkpoint=checkpoint)
    resumed = _model(seed=99)  # different initial weights: all must come from the checkpoint
    result = train(resumed, objective, SETTINGS, family="fno", checkpoint=checkpoint)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]


def test_checkpoint_describes_itself(data, objective, tmp_path):
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    arch = FNOArchitecture(8, 2, 6, "gelu", 4, "mlp", 4)
    train(
        _model(), objective, SETTINGS, family="fno", checkpoint=checkpoint, arguments=arch.as_dict()
    )
    state = load_checkpoint(checkpoint)
    assert state["format"] == "ionops-checkpoint" and state["epoch"] == 4
    assert state["family"] == "fno" and state["arguments"] == arch.as_dict()
    assert state["settings"]["learning_rate"] == 3e-3
    assert set(state["rng"]) == {"shuffle", "torch"}
    assert "ionops_version" in state and "normalizers" in state["objective"]
    assert not list(checkpoint.parent.glob(".*tmp"))


def test_foreign_files_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"payload": Fraction(1, 3)}, path)  # any non-tensor class: refused unpickled
    with pytest.raises(UserError, match="is not a loadable ionops checkpoint"):
        load_checkpoint(path)
    torch.save({"something": torch.zeros(1)}, path)
    with pytest.raises(UserError, match="is not an ionops checkpoint"):
        load_checkpoint(path)


def test_a_checkpoint_resumes_only_the_configuration_that_wrote_it(data, objective, tmp_path):
    from ionops.errors import IonopsError

    checkpoint = tmp_path / "checkpoint.pt"
    arch = FNOArchitecture(8, 2, 6, "gelu", 4, "mlp", 4)
    half = TrainSettings(**{**SETTINGS.__dict__, "epochs": 2})
    train(_model(), objective, half, family="fno", checkpoint=checkpoint, arguments=arch.as_dict())
    other = FNOArchitecture(8, 2, 6, "tanh", 4, "mlp", 4)
    with pytest.raises(IonopsError, match=r"model.activation: 'gelu' there, 'tanh' now"):
        train(
            _model(),
            objective,
            SETTINGS,
            family="fno",
            checkpoint=checkpoint,
            arguments=other.as_dict(),
        )
    faster = TrainSettings(**{**SETTINGS.__dict__, "learning_rate": 1e-2})
    with pytest.raises(IonopsError, match=r"training.learning_rate: 0.003 there, 0.01 now"):
        train(
            _model(),
            objective,
            faster,
            family="fno",
            checkpoint=checkpoint,
            arguments=arch.as_dict(),
        )
    longer = train(
        _model(), objective, SETTINGS, family="fno", checkpoint=checkpoint, arguments=arch.as_dict()
    )
    assert [row["epoch"] for row in longer.history] == [1, 2, 3, 4]  # more epochs: resumed
