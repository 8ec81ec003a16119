"""The crash-safe journal a generation writes while it runs.

Each rank appends one record per finished sample to a journal file of its
own: a fixed header (split, sample index, solver attempts, the number of
events, solver statistics), the sample's trajectory already encoded as the
final file's HDF5 chunk followed by its event times (float64; none for a model
without resets), and a CRC-32 of both. A record is written with one ``write`` and flushed, so a
killed process leaves at most one torn record at the end of its file; the
reader stops at the first record that is short or fails its checksum. A rerun
reads every journal in the folder, skips the samples they hold, and writes a
new journal of its own.

Chunks are encoded as HDF5's shuffle + deflate filters expect them (byte
shuffle of the float32 values, then a zlib stream), so the final file takes
them with ``write_direct_chunk`` and the compression runs on every rank in
parallel instead of on the single writer. The zlib stream comes from Intel's
ISA-L (python-isal), about five times faster than zlib at level 1 for about
the same ratio; any zlib or HDF5 reader decodes it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from isal import isal_zlib
from numpy.typing import NDArray

MAGIC = b"IOJ1"
_HEADER = struct.Struct("<4sBBHI6qQ")
_CRC = struct.Struct("<I")
DEFLATE_LEVEL = 1


def encode_chunk(states: NDArray[np.floating]) -> bytes:
    """float32 bytes of ``states``, byte-shuffled and deflated as HDF5's filters would."""
    raw = np.ascontiguousarray(states, dtype="<f4").view(np.uint8)
    shuffled = raw.reshape(-1, 4).T.tobytes()
    return isal_zlib.compress(shuffled, DEFLATE_LEVEL)


def decode_chunk(payload: bytes, shape: tuple[int, ...]) -> NDArray[np.float32]:
    """Inverse of :func:`encode_chunk` (for tests and inspection; readers use h5py)."""
    shuffled = np.frombuffer(zlib.decompress(payload), dtype=np.uint8)
    return shuffled.reshape(4, -1).T.copy().view("<f4").reshape(shape)


MAX_EVENTS = 2**16 - 1  # per sample: the header's 16-bit count


@dataclass(frozen=True)
class Record:
    """Where one finished sample's chunk lies, and what solving it took; ``events`` counts
    the event times stored after the chunk."""

    split: int
    index: int
    attempts: int
    stats: tuple[int, ...]
    path: Path
    offset: int
    length: int
    events: int = 0

    def _read(self) -> bytes:
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            return handle.read(self.length)

    def read_payload(self) -> bytes:
        """The encoded chunk."""
        return self._read()[: self.length - 8 * self.events]

    def read_events(self) -> NDArray[np.float64]:
        """The sample's event times (ms), in order."""
        if not self.events:
            return np.empty(0)
        return np.frombuffer(self._read()[self.length - 8 * self.events :], dtype="<f8").copy()


class JournalWriter:
    """Appends records to one journal file; each record is one write, then a flush."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = path.open("ab")

    def append(
        self,
        split: int,
        index: int,
        attempts: int,
        stats: tuple[int, ...],
        payload: bytes,
        events: NDArray[np.float64] | None = None,
    ) -> None:
        count = 0 if events is None else events.size
        if count > MAX_EVENTS:
            raise ValueError(f"sample {index} has {count} events; a record holds {MAX_EVENTS}")
        if count:
            payload += np.ascontiguousarray(events, dtype="<f8").tobytes()
        header = _HEADER.pack(MAGIC, split, attempts, count, index, *stats, len(payload))
        crc = zlib.crc32(payload, zlib.crc32(header))
        self._handle.write(header + payload + _CRC.pack(crc))
        self._handle.flush()

    def close(self) -> None:
        """Close the file; one that holds no record is removed (a run that wrote nothing, on
        a full disk say, leaves no empty journal behind for each attempt)."""
        import contextlib

        try:
            self._handle.close()
        finally:
            with contextlib.suppress(OSError):
                if self.path.stat().st_size == 0:
                    self.path.unlink()

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_journal(path: Path) -> Iterator[Record]:
    """Every whole, checksummed record of one journal, in order; stops at a torn tail."""
    data = path.read_bytes()
    offset = 0
    while offset + _HEADER.size <= len(data):
        fields = _HEADER.unpack_from(data, offset)
        magic, split, attempts, events, index, *stats, length = fields
        start = offset + _HEADER.size
        end = start + length
        if magic != MAGIC or end + _CRC.size > len(data):
            return
        header = data[offset:start]
        (crc,) = _CRC.unpack_from(data, end)
        if zlib.crc32(data[start:end], zlib.crc32(header)) != crc:
            return
        yield Record(split, index, attempts, tuple(stats), path, start, length, events)
        offset = end + _CRC.size


def read_journals(folder: Path) -> dict[tuple[int, int], Record]:
    """All finished samples recorded in ``folder``, keyed by (split, index); first record wins."""
    found: dict[tuple[int, int], Record] = {}
    for path in sorted(folder.glob("*.journal")):
        for record in read_journal(path):
            found.setdefault((record.split, record.index), record)
    return found
