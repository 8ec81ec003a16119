"""The paper's subsets, counts and the seeded draws."""

import numpy as np
import pytest

from ionops.datasets.protocols import (
    PAPER_SPLIT_SIZES,
    Subset,
    draw_samples,
    largest_remainder,
    paper_counts,
    scale_counts,
    stimulus_on_grid,
)
from ionops.errors import UserError


@pytest.mark.parametrize("model", ["fhn", "hh", "ord"])
def test_paper_sizes_are_3000_375_375(model):
    tables = paper_counts(model)
    for split, size in PAPER_SPLIT_SIZES.items():
        assert sum(count for _, count in tables[split]) == size


def test_training_counts_are_the_papers():
    counts = {s.name: c for s, c in paper_counts("hh")["train"]}
    assert counts == {"t0": 20, "General": 2380, "nap": 100, "i_high": 300, "t_fin": 200}


def test_fhn_evaluation_sets_add_t_fin_with_50_samples():
    tables = paper_counts("fhn")
    assert "t_fin" not in {s.name for s, _ in tables["train"]}
    for split in ("validation", "test"):
        t_fin = [(s, c) for s, c in tables[split] if s.name == "t_fin"]
        assert t_fin == [(Subset("t_fin", 0.3, 3.0, 100.0, 100.0), 50)]


def test_largest_remainder_is_exact_and_proportional():
    # exact shares 2.5, 297.5, 12.5, 37.5, 25: the two spare samples go to the first ties
    assert largest_remainder([20, 2380, 100, 300, 200], 375) == [3, 298, 12, 37, 25]
    assert sum(largest_remainder([1, 1, 1], 10)) == 10


def test_fraction_scales_every_subset_and_keeps_each_present():
    small = scale_counts(paper_counts("ord"), 0.01)
    counts = {s.name: c for s, c in small["train"]}
    assert counts == {"t0": 1, "General": 20, "i_Mid": 3, "i_low": 3, "t_fin": 3}
    with pytest.raises(UserError, match=r"fraction = 0.0: must be in \(0, 1\]"):
        scale_counts(paper_counts("ord"), 0.0)


def test_draws_lie_in_their_ranges_and_repeat_with_the_seed():
    tables = scale_counts(paper_counts("hh"), 0.1)
    names = [s.name for s, _ in tables["train"]]
    first = draw_samples(tables, names, seed=7)
    again = draw_samples(tables, names, seed=7)
    other = draw_samples(tables, names, seed=8)
    np.testing.assert_array_equal(first["train"].amplitude, again["train"].amplitude)
    assert not np.array_equal(first["train"].amplitude, other["train"].amplitude)
    for split, table in first.items():
        for subset, _ in tables[split]:
            mask = table.subset == names.index(subset.name)
            assert (table.amplitude[mask] >= subset.i_low).all()
            assert (table.amplitude[mask] <= subset.i_high).all()
            assert (table.t_stim[mask] >= subset.t_stim_low).all()
            assert (table.t_stim[mask] <= subset.t_stim_high).all()
    t_fin = first["train"].t_stim[first["train"].subset == names.index("t_fin")]
    assert (t_fin == 100.0).all()


@pytest.mark.parametrize(
    ("subset", "message"),
    [
        (Subset("x", 2.0, 1.0, 0.0, 10.0), r"i range \[2.0, 1.0\] is reversed"),
        (Subset("x", 1.0, 2.0, 5.0, 1.0), r"T_stim range \[5.0, 1.0\] is reversed"),
        (
            Subset("x", 1.0, 2.0, 0.0, 150.0),
            r"T_stim up to 150.0 ms lies beyond the horizon T = 100",
        ),
        (Subset("x", 1.0, 2.0, -1.0, 5.0), r"T_stim -1.0 ms is negative"),
        (Subset("x", float("nan"), 2.0, 0.0, 5.0), r"is not finite"),
    ],
)
def test_bad_subsets_are_named(subset, message):
    with pytest.raises(UserError, match=message):
        subset.validate(100.0)


def test_stimulus_on_grid_holds_until_t_stim_inclusive():
    grid = np.array([0.0, 1.0, 2.0, 3.0])
    out = stimulus_on_grid(np.array([5.0, 2.0]), np.array([2.0, 0.0]), grid)
    np.testing.assert_array_equal(out, [[5, 5, 5, 0], [2, 0, 0, 0]])
    assert out.dtype == np.float32
