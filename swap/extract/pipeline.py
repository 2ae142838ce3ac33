"""The extract stage: videos / images in -> aligned face crops + an alignments file out.

How it is fast without losing faces (numbers in docs/extract.md, `bench/extract.py`):
- videos are cut into chunks of consecutive frames; `jobs` worker processes each take every
  `jobs`-th chunk and decode the file once front to back (frames of other workers' chunks are
  decoded but never converted, ~1 ms each), so no seeking and frame indices are exact;
- within a chunk the full-frame HOG scan (upsample 1: 40 px faces are kept) runs every `scan_every`
  frames, on scene cuts and after a face is lost; in between each face is followed by optical flow
  and re-detected every `detect_every` frames in a small region around it (`swap.faces.tracking`);
- the 128-d embedding (~0.1 s) is computed when a track starts and every `embed_every` frames.

Resumable: each finished chunk is written atomically to FACES_DIR/.parts/; a re-run skips the
chunks and sources already done. The alignments file is replaced atomically when a source is done,
streamed from the chunk files (`alignments.AlignmentsStore`), so the parent's memory does not grow
with the length of the video.
"""
from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import shutil
import sys
import time
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from provenance.fsutil import remove_stale_temps

from .. import __version__
from .. import alignments as A
from .. import faces as F
from ..errors import InputError
from ..lock import folder_lock
from ..video import VideoInfo, expand_inputs, probe, read_image
from .chunks import (PARTS, _init_worker, _Job, _load_parts, _Merge, _part_path, _plan_chunks, _run_job,
                     _source_key, resume_chunk)
from .settings import ExtractSettings, ExtractSummary

__all__ = ["ExtractSettings", "ExtractSummary", "extract"]


@contextmanager
def _bare_main():
    """Start spawned workers without re-running the caller's __main__ (a script that calls
    `extract` without an `if __name__ == "__main__"` guard would otherwise run again in every
    worker and hang the pool). Workers only need `swap.extract`, which they import by name."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _open_alignments(aln_path: Path, settings: ExtractSettings, faces_dir: Path, overwrite: bool) -> A.AlignmentsStore:
    """The alignments to extend: an existing file made with these settings (streamed, not loaded), else
    a new one. Other settings are refused, or with `overwrite` the old crops are removed."""
    key = settings.output_key()
    new = A.AlignmentsStore(aln_path, key, f"veriswap {__version__}")
    if not aln_path.exists():
        return new
    old = A.AlignmentsStore.read(aln_path)
    if old.settings == key:
        old.created_by = new.created_by
        return old
    with old:
        if not overwrite:
            diff = sorted(k for k in key if old.settings.get(k) != key[k])
            raise InputError(f"{aln_path} was made with other settings ({', '.join(diff)}); "
                             "use another output folder or --overwrite")
        for _, _, f in old.faces():     # the old crops no longer match the new settings
            (faces_dir / f["file"]).unlink(missing_ok=True)
    return new


def extract(inputs: Sequence[Path], faces_dir: Path, alignments_path: Optional[Path] = None,
            settings: Optional[ExtractSettings] = None, ref_face: Optional[Path] = None,
            jobs: Optional[int] = None, overwrite: bool = False,
            progress: Optional[Callable[[int, int], None]] = None) -> ExtractSummary:
    """Extract aligned faces from videos, images and image folders.

    `progress(done, total)` is called as frames finish. Raises InputError for unusable input
    (before anything is written: also when no input at all is readable) and when no face is found
    at all; per-source problems (a corrupt file among several inputs) are reported in
    `summary.errors` and the rest carries on. An output folder this call created is removed again
    if it is still empty when the call fails.
    """
    t0 = time.perf_counter()
    s = settings or ExtractSettings()
    s.check()
    faces_dir = Path(faces_dir)
    if faces_dir.exists() and not faces_dir.is_dir():
        raise InputError(f"output is not a folder: {faces_dir}")
    aln_path = Path(alignments_path) if alignments_path else faces_dir / "alignments.json"
    summary = ExtractSummary(faces_dir=str(faces_dir), alignments=str(aln_path))

    if jobs is not None and jobs < 1:
        raise InputError(f"--jobs must be >= 1, got {jobs}")

    paths = expand_inputs(inputs)
    if not paths:
        raise InputError("no inputs given")
    infos: List[Tuple[Path, VideoInfo]] = []
    for p in paths:
        try:
            infos.append((p, probe(p)))
        except InputError as e:
            summary.errors.append(str(e))
    if not infos:       # nothing to extract from: fail before anything is written
        more = len(summary.errors) - 1
        raise InputError(summary.errors[0] + (f" (and {more} more unreadable input{'s' * (more > 1)})" if more else ""))
    summary.sources = len(infos)

    ref = None
    if ref_face is not None:
        ref = F.FaceAnalyzer(s.detector, s.upsample).reference_embedding(read_image(Path(ref_face))).tolist()
        s.ref = hashlib.sha256(np.asarray(ref, np.float32).tobytes()).hexdigest()[:16]

    made = _first_missing(faces_dir)
    try:
        # the alignments are streamed (`A.AlignmentsStore`): memory holds each source's fields and counts, not
        # its records, so the parent stays flat however long the video
        with folder_lock(faces_dir, "veriswap extract"):
            remove_stale_temps(faces_dir)      # a killed run's half-written crops
            with _open_alignments(aln_path, s, faces_dir, overwrite) as store:
                _extract_sources(infos, store, s, ref, faces_dir, jobs, progress, summary)
    except BaseException:
        _remove_empty_dirs(faces_dir, made)
        raise
    summary.seconds = time.perf_counter() - t0
    return summary


def _first_missing(path: Path) -> Optional[Path]:
    """The topmost folder of `path` (itself included) that does not exist yet, or None."""
    path = Path(os.path.abspath(path))
    top = None
    while not path.exists():
        top, path = path, path.parent
        if path == top:
            break
    return top


def _remove_empty_dirs(path: Path, top: Optional[Path]) -> None:
    """Remove `path` and its parents up to `top` (the folders this run created), as long as they are
    empty: `rmdir` never removes anything with content in it."""
    if top is None:
        return
    path = Path(os.path.abspath(path))
    while True:
        try:
            path.rmdir()
        except OSError:
            return
        if path == top or path.parent == path:
            return
        path = path.parent


def _plan_sources(infos: List[Tuple[Path, VideoInfo]], store: A.AlignmentsStore, s: ExtractSettings,
                  faces_dir: Path, jobs: Optional[int], summary: ExtractSummary):
    """Each source still to do, with its chunks still to do (finished chunks of an earlier run are kept):
    ([(path, info, record, parts folder, chunks)], frames to process)."""
    taken = {src.header["key"]: src.header["path"] for src in store.sources.values()}
    plans = []
    total = 0
    for p, info in infos:
        sid = str(p.resolve())
        fp = A.fingerprint(p)
        old = store.sources.get(sid)
        if old is not None and old.header["complete"] and old.header["fingerprint"] == fp:
            summary.frames_resumed += old.frames
            continue
        key = old.header["key"] if old is not None else _source_key(p, taken)
        taken[key] = sid
        rec = A.SourceRecord(sid, key, info.width, info.height, info.fps, info.frames, info.is_image, fp)
        store.put(sid, rec.header(), ())    # until its chunks are merged: no frames, not complete
        parts_dir = faces_dir / PARTS / key
        done = _load_parts(parts_dir, s, fp)
        chunks = _plan_chunks(info.frames, s.every, jobs or os.cpu_count() or 1)
        todo, kept = [], set()
        for a, b in chunks:     # a chunk is done, or done up to a frame (its worker records parts on the way)
            chain, resume_at = resume_chunk(done, a, b)
            kept.update(chain)
            summary.frames_resumed += sum(done[c][1] for c in chain)
            if resume_at is not None:
                todo.append((resume_at, b))
        for a in set(done) - kept:
            _part_path(parts_dir, a).unlink(missing_ok=True)    # cut differently (other --jobs): redone
        for c in todo:      # chunk starts are multiples of `every`
            total += len(range(c[0], c[1] if c[1] is not None else max(info.frames, c[0] + 1), s.every))
        plans.append((p, info, rec, parts_dir, todo))
    return plans, total


def _run_jobs(pool, jobs_list: List[_Job], counter, total: int,
              progress: Optional[Callable[[int, int], None]]) -> List[str]:
    """Run one source's jobs on the pool, reporting progress; the errors they returned."""
    errs = []
    pending = [pool.apply_async(_run_job, (j,)) for j in jobs_list]
    while pending:
        for r in list(pending):
            if r.ready():
                pending.remove(r)
                res = r.get()
                if res["error"]:
                    errs.append(res["error"])
        if progress:
            progress(counter.value, total)
        if pending:
            pending[0].wait(0.2)
    return errs


def _merge_source(store: A.AlignmentsStore, p: Path, info: VideoInfo, rec: A.SourceRecord, parts_dir: Path,
                  s: ExtractSettings, stats: dict, errs: List[str], summary: ExtractSummary) -> None:
    """Stream a source's finished chunks into the alignments and save them (an interrupted run keeps the
    sources it finished); its parts go once it is complete."""
    merge = _Merge(parts_dir, s, rec.fingerprint, stats)
    src = store.put(rec.path, rec.header(), merge)
    src.header["complete"] = not errs and merge.chunks >= 1
    if errs:
        summary.errors.append(errs[0] + " (frames before it were kept; re-run to retry)")
    if src.faces == 0:
        summary.warnings.append(f"no faces found in {p}")
    expected = len(range(0, info.frames, s.every))
    if not info.is_image and not errs and src.frames and src.last + s.every < info.frames - 1:
        summary.warnings.append(f"{p}: decoded {src.frames} of {expected} expected frames "
                                "(the file may be truncated)")
    store.save()
    if src.header["complete"]:
        shutil.rmtree(parts_dir, ignore_errors=True)


def _extract_sources(infos: List[Tuple[Path, VideoInfo]], store: A.AlignmentsStore, s: ExtractSettings,
                     ref: Optional[List[float]], faces_dir: Path, jobs: Optional[int],
                     progress: Optional[Callable[[int, int], None]], summary: ExtractSummary) -> None:
    """Plan, run the workers, merge each source's chunks into `store` and save it; then faces.json."""
    plans, total = _plan_sources(infos, store, s, faces_dir, jobs, summary)
    n_jobs = max(1, min(jobs or os.cpu_count() or 1, max((len(t) for *_, t in plans), default=1)))
    # spawn, not fork: the parent has used OpenCV's and FFmpeg's thread pools, and a forked
    # child that touches them can deadlock (seen: cv2.setNumThreads hanging in the child)
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    stats: dict = {}
    pool = None
    if any(t for *_, t in plans):      # all chunks done earlier: only merging left, no workers needed
        with _bare_main():
            pool = ctx.Pool(n_jobs, initializer=_init_worker, initargs=(counter,))
    try:
        for k, (p, info, rec, parts_dir, todo) in enumerate(plans):
            parts_dir.mkdir(parents=True, exist_ok=True)
            errs = []
            if todo:
                jobs_list = [_Job(str(p), rec.key, todo[w::n_jobs], s, ref, str(faces_dir), str(parts_dir),
                                  info.fps, info.is_image, rec.fingerprint) for w in range(n_jobs) if todo[w::n_jobs]]
                errs = _run_jobs(pool, jobs_list, counter, total, progress)
            if pool is not None and not any(t for *_, t in plans[k + 1:]):
                # no work left: let the workers go (~300 MB each on 1080p) before merging and saving
                pool.close()
                pool.join()
                pool = None
            _merge_source(store, p, info, rec, parts_dir, s, stats, errs, summary)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    try:
        (faces_dir / PARTS).rmdir()
    except OSError:
        pass
    if progress:
        progress(counter.value, total)

    summary.frames_read = counter.value
    summary.faces_found = stats.get("faces_found", 0)
    summary.faces_filtered = stats.get("faces_filtered", 0)
    summary.frames_no_face = stats.get("frames_no_face", 0)
    summary.faces_written = summary.faces_found - summary.faces_filtered
    if plans or store.sources:
        A.write_faces_json(faces_dir, store.faces(), s.size)
    kept = sum(src.faces for src in store.sources.values())
    if infos and kept == 0:
        raise InputError("no faces found in any input" + (" matching --ref-face" if ref is not None else ""))
