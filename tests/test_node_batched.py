"""The node benchmark's seeds side by side (``benchmarks/node_batched.py``): each seed's loss
and gradient are those of its own network under :class:`NodeObjective` (tiny shapes)."""

import sys
from pathlib import Path

import pytest
import torch
from support import NODE_SMALL

from ionops.config import load_experiment
from ionops.datasets.generate import generate, spec_from_config
from ionops.models.families.node_learning import NodeObjective
from ionops.models.registry import get_family

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from node_batched import BatchedObjective, Stacked

FAMILY = get_family("node")
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def short_window(tmp_path_factory):
    """``hh-node``'s tiny dataset with a 4 ms window (400 steps, one upstroke in it): the
    torch-integrated losses cost a second or two there."""
    experiment = load_experiment("hh-node", [*NODE_SMALL, "data.window_ms=4"])
    path = tmp_path_factory.mktemp("node-batched") / "w.h5"
    generate(spec_from_config(experiment.data), path, progress=False)
    return experiment, FAMILY.load_data(experiment, path)


@pytest.mark.parametrize(
    ("model", "tolerance"),
    [({"gradient": "adjoint", "layer_norm": False}, 1e-9),  # hh-node's sinh output
     ({"integrator": "dopri5"}, 1e-5),  # the seeds share dopri5's steps: within its tolerance
     ({"data_weight": 0.0, "output": "linear"}, 1e-9)],
)  # fmt: skip
def test_each_seeds_loss_and_gradient_side_by_side_are_its_own(short_window, model, tolerance):
    experiment, data = short_window
    changed = experiment.model.model_copy(update={"collocation_rounds": 0, **model})
    experiment = experiment.model_copy(update={"model": changed})
    trial = FAMILY.own_trial(experiment, data)
    members = []
    for seed in SEEDS:
        torch.manual_seed(seed)
        members.append(FAMILY.build(trial.arguments))
    single = NodeObjective(data, trial)
    stacked = Stacked(members)
    for k, member in enumerate(members):  # each member's parameters come back as they were
        state = stacked.member(k)
        assert all(torch.equal(state[n], p) for n, p in member.named_parameters())
    losses = BatchedObjective(single).seed_losses(stacked)
    losses.sum().backward()
    for k, member in enumerate(members):
        want = single.loss(member, None)
        want.backward()
        assert float(losses[k]) == pytest.approx(float(want), rel=tolerance)
        side_by_side = stacked.member_gradient(k)
        for name, p in member.named_parameters():
            scale = p.grad.abs().max()
            assert torch.allclose(side_by_side[name], p.grad, rtol=0.0,
                                  atol=10 * tolerance * scale), name  # fmt: skip
    # the seeds are different networks, and the losses tell them apart
    assert len({round(float(v), 12) for v in losses}) == len(SEEDS)
