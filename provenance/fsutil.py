"""The one atomic-write / temp-file module and the one versioned-JSON loader of veriswap.

Every write that matters goes to a temp file in the same folder (`.NAME.xxxx.tmp`), is fsynced and then
`os.replace`d over the target: a crash leaves the old file or the new one, never half of either. A writer
that holds its folder (swap.lock) removes the temps a killed run left with `remove_stale_temps`.
Lives in provenance/ (the bottom layer, no torch, no cv2) so swap, detect and provenance share it.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterator, Optional, Tuple

from .errors import InputError


def temp_name(path: Path) -> Tuple[str, str]:
    """(prefix, suffix) of the temp files written for `path`: what `remove_stale_temps` matches."""
    return f".{Path(path).name}.", ".tmp"


@contextlib.contextmanager
def atomic_open(path: Path, mode: Optional[int] = None, buffering: int = -1,
                fsync: bool = True) -> Iterator[BinaryIO]:
    """Yield a binary file (w+b) that replaces `path` only if the block finishes without error.

    `mode` (e.g. 0o600) is applied before any byte is written, so a secret never exists on disk with wider
    permissions (without it the temp file's 0o600 stays). `buffering` as for open(): a large buffer helps
    writers that hand over small chunks. fsync=False still never leaves a half-written file after a crash
    of the process (only after a power loss); extract uses it for the many small face crops."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = temp_name(path)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    try:
        if mode is not None:
            os.chmod(tmp, mode)  # before any byte is written
        with os.fdopen(fd, "w+b", buffering=buffering) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes, mode: Optional[int] = None, fsync: bool = True) -> None:
    """Write `data` to `path` atomically (see `atomic_open`)."""
    with atomic_open(path, mode, fsync=fsync) as f:
        f.write(data)


def new_temp(folder: Path, prefix: str, suffix: str) -> str:
    """An empty temp file in `folder` (closed) for a writer that needs a path, e.g. an encoder that picks the
    container from the suffix; the caller os.replaces it into place or unlinks it."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    os.close(fd)
    return tmp


def stage_bytes(folder: Path, name: str, data: bytes, mode: Optional[int] = None) -> str:
    """Write `data` to a fsynced temp file for `name` in `folder` and return its path, for a caller that
    commits several files together (os.replace each when all are staged; a model checkpoint does)."""
    prefix, suffix = temp_name(Path(folder) / name)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    try:
        if mode is not None:
            os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def fsync_dir(folder: Path) -> None:
    """fsync a folder (its entries: renames into it survive a power loss); a no-op where unsupported."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temps(folder: Path) -> None:
    """Delete the temp files (`.NAME.xxxx.tmp`, see `atomic_open`) a killed writer left in `folder`.
    Only while the folder is held (swap.lock): no other writer can be mid-write then."""
    for t in Path(folder).glob(".*.tmp"):
        t.unlink(missing_ok=True)


def _a(what: str) -> str:
    return f"an {what}" if what[:1].lower() in "aeiou" else f"a {what}"


def load_versioned_json(path: Path, fmt: str, version: Optional[int], what: str,
                        error: type = InputError) -> Dict[str, Any]:
    """Read a veriswap JSON document: a dict whose "format" is `fmt` and (unless `version` is None)
    whose "version" is `version`. Anything else is one clear `error` naming `what` (e.g. "labels file")
    and the path: missing, unreadable, bad JSON, foreign format, unsupported version."""
    path = Path(path)
    try:
        d = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise error(f"no such {what}: {path}") from None
    except (OSError, ValueError, UnicodeDecodeError):
        raise error(f"not {_a(what)} (bad JSON): {path}") from None
    if not isinstance(d, dict) or d.get("format") != fmt:
        raise error(f"not a veriswap {what}: {path}")
    if version is not None and d.get("version") != version:
        raise error(f"{what} version {d.get('version')} not supported (this veriswap reads {version}): {path}")
    return d
