"""Moving faces aside and back: `apply` (rejected -> FACES_DIR/rejected/), `restore_faces`, and the
faces.json entries that travel with them (streamed, never loaded whole)."""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Set

from provenance.fsutil import atomic_write_bytes

from ..alignments import spool_entry, stream_faces_json, write_faces_index
from ..errors import InputError
from ..lock import folder_lock
from ..video import list_images
from .report import FACES_JSON, FORMAT, REJECTED, SORT_JSON, RestoreSummary, SortReport, _now


def apply_moves(self: SortReport) -> List[str]:
    """SortReport.apply's work, with the folder held."""
    t0 = time.perf_counter()
    folder = Path(self.folder)
    plan = [f for f in self.rejected if (folder / f.file).is_file()]
    if plan:
        rej = folder / REJECTED
        rej.mkdir(exist_ok=True)
        names = {f.file for f in plan}
        _merge_entries(folder / FACES_JSON, rej / FACES_JSON, names, overwrite=True,
                       keep=lambda n: n in names or (rej / n).is_file())
    now = _now()
    try:
        for f in plan:
            _move(folder / f.file, folder / REJECTED / f.file)
            f.where, f.moved = "rejected", {"reject": dict(f.reject), "time": now}
            self.moved.append(f.file)
    finally:        # also on Ctrl-C: sort.json records the moves made so far
        self.faces = self.ranked + [f for f in self.faces if f.where != "top"]
        self.seconds += time.perf_counter() - t0
        self.write()
    return list(self.moved)


def _carry_moves(folder: Path, report: SortReport) -> None:
    """Faces in rejected/ keep the record of why they were moved (from the previous sort.json; this run's
    reasons for a file an interrupted `apply` moved before it could write sort.json)."""
    old = {}
    try:
        doc = json.loads((folder / SORT_JSON).read_text())
        if isinstance(doc, dict) and doc.get("format") == FORMAT:
            old = {k: v.get("moved") for k, v in doc.get("faces", {}).items() if isinstance(v, dict)}
    except FileNotFoundError:
        pass
    except (OSError, ValueError, AttributeError):
        report.warnings.append(f"ignored an unreadable {folder / SORT_JSON} (the record of earlier moves)")
    for f in report.faces:
        if f.where == "rejected":
            f.moved = old.get(f.file) or {"reject": dict(f.reject) or {"unknown": "not moved by this veriswap sort run"},
                                          "time": None}


# ---- restore --------------------------------------------------------------------------------------

def restore_faces(faces_dir: Path | str) -> RestoreSummary:
    """Move every image in FACES_DIR/rejected/ back into FACES_DIR (os.replace each; re-running is safe), put
    back the faces.json entries an extract re-run dropped while they were away, and note it in sort.json.
    A file whose name is taken in FACES_DIR (extract made it again) stays in rejected/ and is reported."""
    folder = Path(faces_dir)
    if not folder.is_dir():
        raise InputError(f"faces folder not found: {folder}")
    with folder_lock(folder, "veriswap sort --restore"):
        return _restore(folder)


def _restore(folder: Path) -> RestoreSummary:
    t0 = time.perf_counter()
    rej = folder / REJECTED
    out = RestoreSummary(str(folder))
    files = list_images(rej) if rej.is_dir() else []
    rj = rej / FACES_JSON
    if rj.is_file():
        present = {p.name for p in files} | {p.name for p in list_images(folder)}
        out.entries_restored = _merge_entries(rj, folder / FACES_JSON, present, overwrite=False, keep=lambda n: True)
    for p in files:
        if (folder / p.name).exists():
            out.conflicts.append(p.name)
            continue
        _move(p, folder / p.name)
        out.restored.append(p.name)
    if rj.is_file():            # rejected/faces.json keeps only the entries of files still there
        left = {p.name for p in list_images(rej)}
        if left:
            _merge_entries(rj, rj, left, overwrite=True, keep=lambda n: n in left)
        else:
            rj.unlink()
    try:
        rej.rmdir()             # only when empty: anything else the user put there stays
    except OSError:
        pass
    _note_restore(folder, out)
    out.seconds = time.perf_counter() - t0
    return out


def _note_restore(folder: Path, out: RestoreSummary) -> None:
    path = folder / SORT_JSON
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return
    for name in out.restored:
        f = doc.get("faces", {}).get(name)
        if isinstance(f, dict):
            f["in"], f["moved"] = "top", None
    doc["restored"] = {"time": _now(), "files": len(out.restored), "conflicts": out.conflicts}
    if isinstance(doc.get("counts"), dict):
        doc["counts"]["in_rejected"] = sum(isinstance(f, dict) and f.get("in") == "rejected"
                                           for f in doc.get("faces", {}).values())
    atomic_write_bytes(path, (json.dumps(doc, indent=1) + "\n").encode())


# ---- faces.json entries, streamed -----------------------------------------------------------------

def _load_entries(path: Path, want: Callable[[str], bool], put: Callable[[str, object], None],
                  required: bool = False) -> Optional[int]:
    """Stream a faces.json: `put(name, entry)` for each wanted entry; returns its crop size (None: no file).
    An unreadable file is an InputError when `required` (FACES_DIR's own), else ignored."""
    try:
        return stream_faces_json(path, put, want)
    except (OSError, ValueError) as e:      # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        if required:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise InputError(f"unreadable {path}: {msg}") from None
        return None


def _merge_entries(src: Path, dst: Path, names: Set[str], overwrite: bool, keep: Callable[[str], bool]) -> int:
    """Write `dst` (atomically, sorted by name, faces.json format) with its own entries that pass `keep`
    plus `src`'s entries for `names` (replacing dst's when `overwrite`; dst == src rewrites src with just
    `names`). Entries wait as JSON lines in a temp file (alignments.write_faces_index). Returns the entries
    added; an unreadable dst is an InputError, never replaced."""
    if not src.is_file():
        return 0
    with tempfile.TemporaryFile(dir=dst.parent) as spool:
        def put_into(index: Dict[str, int]) -> Callable[[str, object], None]:
            return lambda name, entry: index.__setitem__(name, spool_entry(spool, entry))

        old: Dict[str, int] = {}
        dst_size = None if dst == src else _load_entries(dst, keep, put_into(old), required=True)
        new: Dict[str, int] = {}
        src_size = _load_entries(src, lambda n: n in names, put_into(new))
        if src_size is None or (dst_size is not None and dst_size != src_size):
            return 0        # unreadable, or made for another crop size: leave dst as it is
        added = {n: at for n, at in new.items() if overwrite or n not in old}
        write_faces_index(dst, src_size, spool, {**old, **added})
    return len(added)


def _move(src: Path, dst: Path) -> None:
    """One face moved: a rename within the folder, atomic (the file is whole in one place or the other)."""
    os.replace(src, dst)
