"""Atomic file writes (temp file in the same folder + fsync + os.replace), no partial outputs."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator, Optional


def atomic_write_bytes(path: Path, data: bytes, mode: Optional[int] = None) -> None:
    """Write `data` to `path` atomically; `mode` (e.g. 0o600) is applied before the rename
    so a secret never exists on disk with wider permissions."""
    with atomic_open(path, mode) as f:
        f.write(data)


@contextlib.contextmanager
def atomic_open(path: Path, mode: Optional[int] = None, buffering: int = -1) -> Iterator[BinaryIO]:
    """Yield a binary file (w+b) that replaces `path` only if the block finishes without error.
    `buffering` as for open(): a large buffer helps writers that hand over small chunks."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is not None:
            os.chmod(tmp, mode)  # before any byte is written
        with os.fdopen(fd, "w+b", buffering=buffering) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
