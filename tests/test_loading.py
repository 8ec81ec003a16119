"""Loading splits into tensors with the paper's normalisation, and its inverse."""

import h5py
import numpy as np
import pytest
import torch

from ionops.datasets.loading import fit_normalizer, load_dataset
from ionops.errors import UserError


def test_per_time_normalisation_uses_training_statistics(hh_dataset):
    data = load_dataset(hh_dataset, "per_time")
    train = data.splits["train"].targets
    assert train.dtype == torch.float32 and train.shape[1:] == (4, 64)
    mean = train.double().mean(dim=0)
    assert mean.abs().max() < 1e-4
    # unit variance wherever the training states actually vary at that time point
    std = train.double().std(dim=0, unbiased=False)
    varying = std > 1e-2
    assert varying.float().mean() > 0.5
    torch.testing.assert_close(std[varying], torch.ones_like(std[varying]), atol=1e-3, rtol=0)


def test_flat_training_time_points_fall_back_to_the_overall_spread():
    # every training stimulus ended by t = 1; a validation stimulus lasting to t = 3
    rng = np.random.default_rng(1)
    train = np.zeros((20, 1, 6))
    train[:, 0, :2] = rng.uniform(1.0, 2.0, size=(20, 1))
    normalizer = fit_normalizer([train], "per_time", channels=1, n_t=6)
    overall = train.std()
    np.testing.assert_allclose(normalizer.std[0, 2:].numpy(), overall, rtol=1e-6)
    assert (normalizer.std[0, :2].numpy() < overall).all()
    validation = torch.zeros(1, 1, 6)
    validation[0, 0, :4] = 1.5
    encoded = normalizer.encode_(validation.clone())
    assert encoded.abs().max() < 10, "a longer stimulus must not be divided by eps"
    torch.testing.assert_close(normalizer.decode(encoded), validation)


@pytest.mark.parametrize("kind", ["per_time", "per_variable", "none"])
def test_decode_recovers_the_stored_physical_values(hh_dataset, kind):
    data = load_dataset(hh_dataset, kind)
    with h5py.File(hh_dataset, "r") as handle:
        physical = torch.from_numpy(handle["test/states"][...])
        amplitude = handle["test/amplitude"][...]
    decoded = data.target_normalizer.decode(data.splits["test"].targets)
    torch.testing.assert_close(decoded, physical, atol=1e-4, rtol=1e-5)
    inputs = data.input_normalizer.decode(data.splits["test"].inputs[:, None, :])[:, 0]
    torch.testing.assert_close(
        inputs[:, 0], torch.from_numpy(amplitude).float(), atol=1e-4, rtol=1e-5
    )


def test_per_variable_statistics_are_one_per_state():
    rng = np.random.default_rng(0)
    blocks = [rng.normal(3.0, 2.0, size=(50, 2, 40)), rng.normal(3.0, 2.0, size=(30, 2, 40))]
    normalizer = fit_normalizer(blocks, "per_variable", 2, 40)
    assert normalizer.mean.shape == (2, 1)
    everything = np.concatenate(blocks)
    np.testing.assert_allclose(normalizer.mean[:, 0], everything.mean(axis=(0, 2)), rtol=1e-6)
    np.testing.assert_allclose(normalizer.std[:, 0], everything.std(axis=(0, 2)), rtol=1e-5)


def test_bad_requests_are_explained(hh_dataset, tmp_path):
    with pytest.raises(UserError, match="normalisation = 'zscore'; choose one of per_time"):
        load_dataset(hh_dataset, "zscore")
    with pytest.raises(UserError, match="unknown split 'dev'"):
        load_dataset(hh_dataset, splits=["dev"])
    with pytest.raises(UserError, match=r"no dataset at .*: generate one with `ionops generate`"):
        load_dataset(tmp_path / "missing.h5")


@pytest.mark.slow
def test_loading_does_not_double_the_data_in_memory(tmp_path):
    """Peak RSS growth while loading stays well under twice the float32 data (ORd, ~126 MB)."""
    import subprocess
    import sys

    from support import small_spec

    from ionops.datasets.generate import generate

    path = tmp_path / "ord.h5"
    generate(small_spec("ord", fraction=0.025, n_t=8000, t_end_ms=1000.0), path, progress=False)
    with h5py.File(path, "r") as handle:
        data_bytes = sum(handle[f"{s}/states"].size * 4 for s in ("train", "validation", "test"))
    assert data_bytes > 100 * 2**20
    probe = (
        "from pathlib import Path\n"
        "from ionops.datasets.loading import load_dataset\n"
        "def kib(key):\n"
        "    line = next(l for l in Path('/proc/self/status').read_text().splitlines()"
        " if l.startswith(key))\n"
        "    return int(line.split()[1])\n"
        "Path('/proc/self/clear_refs').write_text('5')  # restart the high-water mark\n"
        "before = kib('VmRSS:')\n"
        f"data = load_dataset({str(path)!r})\n"
        "print((kib('VmHWM:') - before) * 1024)\n"
    )
    grown = int(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                               check=True).stdout)  # fmt: skip
    assert data_bytes <= grown < 1.5 * data_bytes


def test_nan_or_inf_states_are_refused_naming_the_sample_and_variable(hh_dataset, tmp_path):
    import shutil

    spoiled = tmp_path / "spoiled.h5"
    shutil.copyfile(hh_dataset, spoiled)
    with h5py.File(spoiled, "r+") as handle:
        states = handle["validation/states"][...]
        states[2, 3, 10] = np.inf
        handle["validation/states"][...] = states
    with pytest.raises(UserError, match=r"validation sample 2 holds inf in n; a dataset must be"):
        load_dataset(spoiled)


def _spoil(source, target, change) -> None:
    import shutil

    shutil.copyfile(source, target)
    with h5py.File(target, "r+") as handle:
        change(handle)


def _replace(name: str, cut):
    def change(handle) -> None:
        values = handle[name][...]
        del handle[name]
        handle[name] = cut(values)

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: h.__delitem__("test"), r"has no test/states: not a complete ionops dataset"),
        (lambda h: h.__delitem__("time"), r"has no time: not a complete ionops dataset"),
        (_replace("validation/states", lambda x: x[:, 0, :]),
         r"validation/states has shape \(\d+, 64\), 2 dimensions where a dataset has 3"),
        (_replace("validation/states", lambda x: x[:, :, :50]),
         r"validation/states has shape \(\d+, 4, 50\); a dataset of 4 states on its 64 time"),
        (_replace("test/states", lambda x: x[:0]), r"the test split is empty"),
        (_replace("train/t_stim", lambda x: x[:2]), r"train/t_stim has 2 rows for \d+ samples"),
        (lambda h: h.attrs.__delitem__("state_names"), r"names no states"),
    ],
)  # fmt: skip
def test_a_dataset_of_the_wrong_shape_is_refused_naming_what_is_wrong(hh_dataset, tmp_path,
                                                                      change, message):  # fmt: skip
    spoiled = tmp_path / "spoiled.h5"
    _spoil(hh_dataset, spoiled, change)
    with pytest.raises(UserError, match=message):
        load_dataset(spoiled)


def test_a_file_that_is_not_hdf5_or_cut_short_is_refused(hh_dataset, tmp_path):
    text = tmp_path / "text.h5"
    text.write_text("states, time\n")
    with pytest.raises(UserError, match=r"text.h5 is not a readable dataset: not an HDF5 file"):
        load_dataset(text)
    whole = hh_dataset.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UserError, match=r"cut.h5 is not a readable dataset: cut short"):
        load_dataset(cut)
