"""One writer per output folder. Two `veriswap train` runs on one model folder (or two extracts into one
faces folder, two converts to one output) would each save over the other's work; the second one is
refused instead, with one line naming the first.

An advisory `flock` on FOLDER/.veriswap.lock: the kernel releases it when the holder exits, however it
exits (kill -9 included), so there is never a stale lock to clean up. The file stays (it is empty but
for the holder's description); where there is no `fcntl` (Windows) nothing is locked.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from .errors import InputError

LOCK_NAME = ".veriswap.lock"

try:
    import fcntl
except ImportError:             # Windows: no advisory locks; everything else works the same
    fcntl = None  # type: ignore[assignment]


@contextmanager
def folder_lock(folder: Path, what: str) -> Iterator[None]:
    """Hold FOLDER for `what` (e.g. "veriswap train") while the block runs. The folder is created if
    missing; if this call created it and the block fails leaving only the lock in it, both are removed."""
    folder = Path(folder)
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    ok = False
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another veriswap process"
                raise InputError(f"{folder} is in use by {holder}: wait for it to finish, or stop it") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{what} (pid {os.getpid()})".encode(), 0)
        yield
        ok = True
    finally:
        os.close(fd)
        if made and not ok and [p.name for p in folder.iterdir()] == [LOCK_NAME]:
            path.unlink(missing_ok=True)
            folder.rmdir()


def holder(folder: Path) -> Optional[str]:
    """Who holds FOLDER now ("veriswap train (pid 123)"), or None when nobody does. Reads only: the lock file is
    not created and its description not changed (for a reader such as `veriswap model`)."""
    path = Path(folder) / LOCK_NAME
    if fcntl is None or not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return os.pread(fd, 200, 0).decode(errors="replace").strip() or "another veriswap process"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
