"""Tune's saved state, signed: Ray never unpickles a file ionops did not write.

Ray Tune continues a search from pickles in its folder (``tuner.pkl``, the
searcher's state, the trials cloudpickled inside the experiment state), and a
pickle runs code when it is loaded: a search folder that anyone else could
write would run their code on resume. So after each of Tune's snapshots
ionops copies Tune's top-level files into ``signed/``, each named by its
SHA-256, under a manifest that carries an HMAC with a per-user key
(``~/.config/ionops/state-key``, mode 0600). Before a restore the manifest
and every copy are checked and Tune's files are replaced by the signed
copies, so Ray reads only bytes that ionops signed.

A kill between one of Tune's snapshots and its signing costs that snapshot:
the search continues from the one before, as if the kill had come a moment
earlier. A file Tune writes only when a search starts (``tuner.pkl``) keeps
its bytes: a resumed Tune copies it back from its staging folder at every
snapshot, in place, so a kill mid-copy leaves a beginning of the signed
bytes, which is put back whole; any other difference was made by someone
else: refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickletools
import secrets
from pathlib import Path
from typing import Any

from ray.tune import Callback

from ionops.errors import UserError
from ionops.workdir import write_atomic, write_json

SIGNED = "signed"  # beside tune/ in a search or retraining folder
MANIFEST = "manifest.json"
WRITTEN_ONCE = ("tuner.pkl",)
KEY_BYTES = 32


def key_path() -> Path:
    """``$XDG_CONFIG_HOME/ionops/state-key`` (``~/.config`` by default)."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "ionops" / "state-key"


def user_key() -> bytes:
    """This user's signing key, created (0600) on first use; a key others can read is refused."""
    path = key_path()
    if not path.exists():
        _create_key(path)
    status = path.stat()
    if status.st_uid != os.getuid() or status.st_mode & 0o077:
        raise UserError(
            f"{path} (mode {status.st_mode & 0o777:o}, owner uid {status.st_uid}) signs your "
            f"searches' saved state and must be yours alone: chmod 600 {path}"
        )
    key = path.read_bytes()
    if len(key) < KEY_BYTES:
        raise UserError(f"{path} holds {len(key)} bytes, not a key of {KEY_BYTES}: remove it "
                        "(searches signed with it can then not be resumed)")  # fmt: skip
    return key


def _create_key(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, secrets.token_bytes(KEY_BYTES))
    finally:
        os.close(descriptor)
    try:
        os.link(temporary, path)  # atomic, and never over a key another process made first
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def _mac(key: bytes, digests: dict[str, str]) -> str:
    message = json.dumps(digests, sort_keys=True).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _stamp(tune_dir: Path) -> dict[str, tuple[int, int]]:
    """Tune's top-level files with their sizes and modification times."""
    stamps = {}
    with os.scandir(tune_dir) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                status = entry.stat(follow_symlinks=False)
                stamps[entry.name] = (status.st_size, status.st_mtime_ns)
    return stamps


def _whole(name: str, data: bytes) -> bool:
    """Whether a file Tune may still be copying is complete (read without running anything)."""
    try:
        if data[:1] == b"\x80" or name.endswith(".pkl"):  # a pickle (some named .json)
            return [op.name for op, _, _ in pickletools.genops(data)][-1:] == ["STOP"]
        if name.endswith(".json"):
            json.loads(data)
    except Exception:
        return False
    return True


def sign(tune_dir: Path, store: Path) -> bool:
    """Sign Tune's files as they stand; False (nothing changed) while Tune is writing one."""
    contents: dict[str, bytes] = {}
    for name, stamp in sorted(_stamp(tune_dir).items()):
        path = tune_dir / name
        try:
            data = path.read_bytes()
            after = path.stat()
        except FileNotFoundError:
            return False
        if (after.st_size, after.st_mtime_ns) != stamp or not _whole(name, data):
            return False
        contents[name] = data
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}
    signed = _read_manifest(store)
    if signed is not None and signed.get("files") == digests:
        return True
    for name, digest in digests.items():
        if not (store / digest).exists():
            write_atomic(store / digest, contents[name])
    write_json(store / MANIFEST, {"files": digests, "hmac": _mac(user_key(), digests)})
    for blob in store.iterdir():  # copies no manifest names any more
        if blob.name != MANIFEST and blob.name not in digests.values():
            blob.unlink(missing_ok=True)
    return True


def _read_manifest(store: Path) -> dict[str, Any] | None:
    path = store / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        manifest = None
    if not (isinstance(manifest, dict) and isinstance(manifest.get("files"), dict)):
        raise UserError(f"{path} is not a manifest ionops wrote; start over with --overwrite")
    return manifest


def restore(tune_dir: Path, store: Path) -> list[str] | None:
    """Put the signed snapshot back in ``tune_dir`` before Tune reads it.

    Returns the names of Tune's files that were replaced or removed (a snapshot
    taken after the last signing), or None where nothing was ever signed. The
    pickled errors of failed trials (``*/error.pkl``, unsigned) are removed.
    Refused, naming the file: a manifest or copy that does not match its
    signature, and a file Tune writes only once that differs from its copy.
    """
    manifest = _read_manifest(store)
    if manifest is None:
        return None
    digests: dict[str, str] = manifest["files"]
    refuse = ("; Ray would unpickle it and run whatever it holds. Start over with --overwrite "
              "(or restore the folder from a copy you trust)")  # fmt: skip
    if not hmac.compare_digest(str(manifest.get("hmac", "")), _mac(user_key(), digests)):
        raise UserError(f"{store / MANIFEST} does not carry your signature: the saved Tune state "
                        f"was changed, or signed by another user or key{refuse}")  # fmt: skip
    signed: dict[str, bytes] = {}
    for name, digest in digests.items():
        blob = store / digest
        data = blob.read_bytes() if blob.is_file() else b""
        if Path(name).name != name or hashlib.sha256(data).hexdigest() != digest:
            raise UserError(f"{blob} (the signed copy of tune/{name}) was changed or removed "
                            f"after ionops signed it{refuse}")  # fmt: skip
        signed[name] = data
    current = _stamp(tune_dir)
    for name in WRITTEN_ONCE:  # a copy cut off (a beginning of the signed bytes) is put back
        if name in current and not signed.get(name, b"").startswith((tune_dir / name).read_bytes()):
            raise UserError(f"{tune_dir / name} was changed after ionops signed it{refuse}")
    replaced = []
    for name in sorted(set(current) - set(signed)):
        (tune_dir / name).unlink()
        replaced.append(name)
    for name, data in signed.items():
        path = tune_dir / name
        if name not in current or path.read_bytes() != data:
            write_atomic(path, data)
            replaced.append(name)
    for pickled in tune_dir.glob("*/error.pkl"):  # Tune unpickles a failed trial's error from
        pickled.unlink()  # here; without it Tune reads the same error as text (error.txt)
    return replaced


class StateSigner(Callback):
    """Signs Tune's state after each of its snapshots (checked once per step of Tune's loop)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._signed: dict[str, tuple[int, int]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"folder": self.folder, "_signed": {}}

    def relocate(self, folder: Path) -> None:
        """The folder the restored search lives in now (it may have been moved)."""
        self.folder, self._signed = Path(folder), {}

    def sign_now(self) -> None:
        tune_dir = self.folder / "tune"
        stamps = _stamp(tune_dir) if tune_dir.is_dir() else {}
        if stamps and stamps != self._signed and sign(tune_dir, self.folder / SIGNED):
            self._signed = stamps

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self.sign_now()

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self.sign_now()
