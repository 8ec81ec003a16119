"""The generation journal: records survive a torn tail; chunks decode as HDF5 would store them."""

import h5py
import numpy as np

from ionops.datasets.journal import JournalWriter, decode_chunk, encode_chunk, read_journals


def test_chunk_round_trips_and_is_what_hdf5_shuffle_gzip_reads(tmp_path):
    states = np.random.default_rng(0).normal(size=(3, 50)).astype(np.float32)
    payload = encode_chunk(states)
    np.testing.assert_array_equal(decode_chunk(payload, states.shape), states)
    with h5py.File(tmp_path / "x.h5", "w") as handle:
        data = handle.create_dataset(
            "d", shape=(2, 3, 50), dtype="<f4", chunks=(1, 3, 50),
            shuffle=True, compression="gzip", compression_opts=1,
        )  # fmt: skip
        data.id.write_direct_chunk((1, 0, 0), payload)
    with h5py.File(tmp_path / "x.h5", "r") as handle:
        np.testing.assert_array_equal(handle["d"][1], states)


def test_torn_and_corrupt_records_are_ignored(tmp_path):
    path = tmp_path / "run-r0000.journal"
    with JournalWriter(path) as writer:
        for index in range(3):
            writer.append(0, index, 1, (index, 0, 0, 0, 0, 0), bytes([index]) * 10)
    whole = path.read_bytes()
    path.write_bytes(whole[:-5])  # a kill in the middle of the last record
    found = read_journals(tmp_path)
    assert sorted(found) == [(0, 0), (0, 1)]
    assert found[(0, 1)].read_payload() == b"\x01" * 10
    assert found[(0, 1)].stats == (1, 0, 0, 0, 0, 0)

    corrupt = bytearray(whole)
    corrupt[70] ^= 0xFF  # flips a payload byte of the first record
    path.write_bytes(bytes(corrupt))
    assert read_journals(tmp_path) == {}


def test_a_journal_that_holds_no_record_is_not_left_behind(tmp_path):
    """A run that writes nothing (a full disk, a failure before the first sample) leaves no
    empty journal for each attempt; one with a record stays."""
    empty, kept = tmp_path / "a-r0000.journal", tmp_path / "b-r0000.journal"
    with JournalWriter(empty):
        pass
    with JournalWriter(kept) as writer:
        writer.append(0, 0, 1, (0, 0, 0, 0, 0, 0), b"x" * 10)
    assert not empty.exists()
    assert sorted(read_journals(tmp_path)) == [(0, 0)]
