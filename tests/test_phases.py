"""Training beyond one optimiser: a family's own step (L-BFGS, clipping, parameter groups)
and phases (freeze part of the network, learn from other data), resumed exactly."""

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from ionops.errors import IonopsError, UserError
from ionops.models.family import Objective
from ionops.training import TrainSettings, load_checkpoint, save_checkpoint, train
from ionops.training.optimisation import Optimisation, Phase, standard

SETTINGS = TrainSettings(learning_rate=1e-2, epochs=6, batch_size=8, scheduler="step",
                         step_size=2, gamma=0.5, eval_splits=("train",))  # fmt: skip


class Regression(Objective):
    """y = X w + b by least squares; ``second`` (another target) after a phase named so."""

    state_names = ("y",)

    def __init__(self, phases: Sequence[Phase] = (Phase("train"),), *, lbfgs: bool = False,
                 groups: bool = False) -> None:  # fmt: skip
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(32, 3, generator=generator, dtype=torch.float64)
        self.targets = {
            "first": self.x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.3,
            "second": self.x @ torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64) - 1.0,
        }
        self.y = self.targets["first"]
        self._phases, self.lbfgs, self.groups = tuple(phases), lbfgs, groups
        self.entered: list[str] = []

    def phases(self, settings: TrainSettings) -> Sequence[Phase]:
        return self._phases

    def enter(self, phase: Phase) -> None:
        self.entered.append(phase.name)
        self.y = self.targets["second" if phase.name == "second" else "first"]

    def optimisation(self, model: nn.Module, phase: Phase, settings: TrainSettings) -> Any:
        trainable = [p for p in model.parameters() if p.requires_grad]
        if self.lbfgs:
            lbfgs = torch.optim.LBFGS(
                trainable, lr=1.0, max_iter=50, tolerance_grad=1e-14, tolerance_change=0.0,
                line_search_fn="strong_wolfe",
            )  # fmt: skip
            return Optimisation([lbfgs], closure=True)
        if self.groups:  # the bias learns ten times faster than the weights
            weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
            biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
            rate = settings.learning_rate
            adam = torch.optim.Adam([{"params": weights, "lr": rate},
                                     {"params": biases, "lr": 10 * rate}])  # fmt: skip
            return Optimisation([adam], [torch.optim.lr_scheduler.StepLR(adam, 2, 0.5)])
        return super().optimisation(model, phase, settings)

    def batches(self, generator: torch.Generator, batch_size: int) -> Iterator[Any]:
        order = torch.randperm(len(self.x), generator=generator)
        for start in range(0, len(order), batch_size if not self.lbfgs else len(order)):
            yield order[start : start + (batch_size if not self.lbfgs else len(order))]

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        return ((model(self.x[batch]).squeeze(-1) - self.y[batch]) ** 2).mean()

    def evaluate(self, model: nn.Module, split: str) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {"mse": (model(self.x).squeeze(-1) - self.y) ** 2}

    def splits(self) -> tuple[str, ...]:
        return ("train",)


def _model(seed: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1)).double()


def _same(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in
               zip(a.state_dict().values(), b.state_dict().values(), strict=True))  # fmt: skip


def test_lbfgs_with_a_closure_reaches_the_least_squares_solution():
    objective = Regression(lbfgs=True)
    model = nn.Linear(3, 1).double()
    train(model, objective, replace(SETTINGS, epochs=3), family="test")
    # independent truth: numpy's least squares on the same data
    design = np.c_[objective.x.numpy(), np.ones(len(objective.x))]
    exact = np.linalg.lstsq(design, objective.y.numpy(), rcond=None)[0]
    found = np.r_[model.weight.detach().numpy().ravel(), model.bias.detach().numpy()]
    np.testing.assert_allclose(found, exact, atol=1e-9)


def test_gradient_clipping_bounds_the_steps_global_norm():
    model = nn.Linear(3, 1).double()
    before = torch.cat([p.detach().clone().ravel() for p in model.parameters()])
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    step = Optimisation([sgd], clip_norm=0.25)
    objective = Regression()
    step.step(lambda: 1e3 * objective.loss(model, torch.arange(32)))  # a gradient far above 0.25
    after = torch.cat([p.detach().ravel() for p in model.parameters()])
    # torch divides by (norm + 1e-6): the bound holds to that
    assert float((before - after).norm() / 0.1) == pytest.approx(0.25, rel=1e-6)


def test_the_experiments_gradient_clip_reaches_the_standard_optimisation():
    model = nn.Linear(3, 1)
    assert standard(model.parameters(), replace(SETTINGS, gradient_clip=2.0)).clip_norm == 2.0
    assert standard(model.parameters(), SETTINGS).clip_norm is None


def test_parameter_groups_keep_their_own_learning_rates():
    model = _model()
    result = train(model, Regression(groups=True), SETTINGS, family="test")
    assert [row["learning_rate"] for row in result.history] == [0.01, 0.005, 0.005, 0.0025,
                                                                0.0025, 0.00125]  # fmt: skip


PHASES = (Phase("first", until=3), Phase("second", frozen=("0.",)))


def test_a_second_phase_freezes_its_parts_and_learns_other_data():
    model = _model()
    objective = Regression(PHASES)
    after_first = {}

    def remember(report: Any, written: Any) -> None:
        if report.epoch == 3:
            after_first.update({k: v.clone() for k, v in model.state_dict().items()})

    result = train(model, objective, SETTINGS, family="test", on_epoch=remember)
    assert objective.entered == ["first", "second"]
    state = model.state_dict()
    assert torch.equal(state["0.weight"], after_first["0.weight"])  # frozen in "second"
    assert torch.equal(state["0.bias"], after_first["0.bias"])
    assert not torch.equal(state["1.weight"], after_first["1.weight"])
    # the second phase starts a fresh optimiser: its schedule restarts at the learning rate
    assert [row["learning_rate"] for row in result.history][2:4] == [0.005, 0.01]
    assert result.parameter_count == 4 * 3 + 4 + 4 + 1  # every parameter, frozen or not


@pytest.mark.parametrize("stop", [2, 3, 4])
def test_resume_inside_and_across_phases_is_exact(tmp_path, stop):
    straight = _model()
    train(straight, Regression(PHASES), SETTINGS, family="test")

    checkpoint = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):

        def interrupt(report: Any, written: Any) -> None:
            if report.epoch == stop:
                raise KeyboardInterrupt

        train(_model(), Regression(PHASES), SETTINGS, family="test", checkpoint=checkpoint,
              on_epoch=interrupt)  # fmt: skip
    assert load_checkpoint(checkpoint)["phase"] == ("first" if stop <= 3 else "second")
    resumed = _model(seed=7)  # other weights: everything comes from the checkpoint
    objective = Regression(PHASES)
    result = train(resumed, objective, SETTINGS, family="test", checkpoint=checkpoint)
    assert _same(straight, resumed)
    assert objective.entered[0] == ("first" if stop < 3 else "second")
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4, 5, 6]


def test_a_checkpoint_of_other_phases_is_refused(tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    train(_model(), Regression(PHASES), replace(SETTINGS, epochs=4), family="test",
          checkpoint=checkpoint)  # fmt: skip
    other = (Phase("first", until=2), Phase("second", frozen=("0.",)))
    with pytest.raises(IonopsError, match=r"trained in the phases .*'first', 3.*this run has"):
        train(_model(), Regression(other), SETTINGS, family="test", checkpoint=checkpoint)


def test_epochs_too_few_for_the_phases_name_the_setting():
    with pytest.raises(UserError, match=r"training.epochs = 3 does not fit .*second"):
        train(_model(), Regression(PHASES), replace(SETTINGS, epochs=3), family="test")


def test_freezing_a_name_the_network_lacks_is_refused():
    phases = (Phase("first", until=2), Phase("second", frozen=("gates.",)))
    with pytest.raises(ValueError, match=r"freezes 'gates.', which names no parameter"):
        train(_model(), Regression(phases), SETTINGS, family="test")


def test_a_checkpoint_from_before_phases_still_resumes_exactly(tmp_path):
    straight = _model()
    train(straight, Regression(), SETTINGS, family="test")
    checkpoint = tmp_path / "checkpoint.pt"
    train(_model(), Regression(), replace(SETTINGS, epochs=3), family="test",
          checkpoint=checkpoint)  # fmt: skip
    state = load_checkpoint(checkpoint)  # as an earlier version wrote it: one optimiser by name
    saved = state.pop("optimisation")
    state.pop("phase"), state.pop("phases")
    state["optimizer"], state["scheduler"] = saved["optimizers"][0], saved["schedulers"][0]
    save_checkpoint(state, checkpoint)
    resumed = _model(seed=5)
    train(resumed, Regression(), SETTINGS, family="test", checkpoint=checkpoint)
    assert _same(straight, resumed)
