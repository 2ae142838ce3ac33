"""The extract stage: videos / images in -> aligned face crops + an alignments file out.

How it is fast without losing faces (numbers in docs/extract.md, `bench/extract.py`):
- videos are cut into chunks of consecutive frames; `jobs` worker processes each take every
  `jobs`-th chunk and decode the file once front to back (frames of other workers' chunks are
  decoded but never converted, ~1 ms each), so no seeking and frame indices are exact;
- within a chunk the full-frame HOG scan (upsample 1: 40 px faces are kept) runs every `scan_every`
  frames, on scene cuts and after a face is lost; in between each face is followed by optical flow
  and re-detected every `detect_every` frames in a small region around it (`swap.tracking`);
- the 128-d embedding (~0.1 s) is computed when a track starts and every `embed_every` frames.

Resumable: each finished chunk is written atomically to FACES_DIR/.parts/; a re-run skips the
chunks and sources already done. The alignments file is replaced atomically when a source is done,
streamed from the chunk files (`alignments.AlignmentsStore`), so the parent's memory does not grow
with the length of the video.
"""
from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import os
import shutil
import signal
import sys
import time
import types
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import __version__
from . import alignments as A
from . import faces as F
from .errors import InputError
from .lock import folder_lock
from .tracking import FaceTracker
from .video import (VideoInfo, atomic_write_bytes, expand_inputs, iter_frames, probe, read_image, remove_stale_temps,
                    write_image_atomic)

PARTS = ".parts"
WARMUP = 8                      # frames processed before a chunk starts, so tracks and smoothing are warm


@dataclass
class ExtractSettings:
    detector: str = "hog"
    upsample: int = 1
    size: int = F.DEFAULT_SIZE
    padding: float = F.DEFAULT_PADDING
    every: int = 1
    detect_every: int = 5       # video: re-detect each tracked face (in a region around it) every N processed frames
    scan_every: int = 25        # video: full-frame detection for new faces every N processed frames (and on cuts)
    embed_every: int = 25       # video: refresh a track's embedding every N processed frames
    smooth: bool = True
    min_cutoff: float = 4.0     # One-Euro filter (Hz): lower = smoother, more lag
    beta: float = 1.0
    min_size: int = F.MIN_FACE
    max_distance: float = 0.6   # with a reference face: keep faces closer than this
    ref: Optional[str] = None   # sha256 of the reference embedding (set by `extract`)
    refeed: int = 1             # landmark fits averaged per face (faceswap's --re-feed)

    def output_key(self) -> dict:
        """Settings that change what is written: a resume must match them."""
        d = asdict(self)
        if d["ref"] is None:
            d.pop("max_distance")
        if d["refeed"] == 1:        # folders extracted before the option existed resume as they are
            d.pop("refeed")
        return d


@dataclass
class ExtractSummary:
    sources: int = 0
    frames_read: int = 0
    frames_resumed: int = 0       # frames skipped because an earlier run already did them
    faces_found: int = 0
    faces_written: int = 0
    faces_filtered: int = 0       # dropped by --ref-face
    frames_no_face: int = 0
    seconds: float = 0.0
    alignments: str = ""
    faces_dir: str = ""
    warnings: List[str] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames_read / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Job:
    """Work for one worker process on one source."""

    path: str
    key: str
    chunks: List[Tuple[int, Optional[int]]]     # [start, end) frame indices, end None = to EOF
    settings: ExtractSettings
    ref: Optional[List[float]]
    faces_dir: str
    parts_dir: str
    fps: float
    is_image: bool
    fingerprint: dict


# ---- worker side ------------------------------------------------------------------------------

_COUNTER = None


def _init_worker(counter) -> None:
    global _COUNTER
    _COUNTER = counter
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # the parent handles Ctrl-C and stops us
    import cv2

    cv2.setNumThreads(1)


def _heap_trimmer() -> Callable[[], object]:
    """glibc's malloc_trim: hands freed heap pages back to the OS. dlib's full-frame scan allocates and
    frees ~100 MB on a 1080p frame, which glibc otherwise keeps (worker RSS ~400 MB instead of ~300)."""
    try:
        import ctypes

        fn = ctypes.CDLL("libc.so.6").malloc_trim
        fn.argtypes = [ctypes.c_size_t]
        return lambda: fn(0)
    except (OSError, AttributeError):     # not glibc (macOS, musl, Windows): nothing to do
        return lambda: None


def _tick(n: int = 1) -> None:
    if _COUNTER is not None:
        with _COUNTER.get_lock():
            _COUNTER.value += n


def _part_path(parts_dir: str, start: int) -> Path:
    return Path(parts_dir) / f"{start:09d}.json"


class _ChunkState:
    def __init__(self, job: _Job, start: int, end: Optional[int]):
        s = job.settings
        self.start, self.end = start, end
        self.frames: Dict[int, list] = {}
        self.stats = {"faces_found": 0, "faces_filtered": 0, "frames_no_face": 0}
        freq = max(job.fps, 1.0) / s.every
        self.tracker = FaceTracker(s.detector, s.upsample, s.min_size, s.detect_every, s.smooth and not job.is_image,
                                   freq, s.min_cutoff, s.beta, scan_every=s.scan_every, refeed=s.refeed)


def _faces_of_frame(job: _Job, st: _ChunkState, index: int, rgb: np.ndarray, emit: bool) -> None:
    s = job.settings
    if job.is_image:
        st.tracker.reset()      # unrelated photos: detect everything, no tracking
    tracked = st.tracker.step(rgb, index, force_detect=job.is_image)
    if not emit:
        return
    records = []
    for tf in sorted(tracked, key=lambda t: -(t.box[2] - t.box[0]) * (t.box[3] - t.box[1])):
        tr = tf.track
        if tr.embedding is None or job.is_image or index - tr.embedded_at >= s.embed_every * s.every:
            tr.embedding, tr.embedded_at = F.embedding(rgb, tf.landmarks), index
        st.stats["faces_found"] += 1
        if job.ref is not None and F.distance(tr.embedding, job.ref) > s.max_distance:
            st.stats["faces_filtered"] += 1
            continue
        m = F.align_matrix(tf.landmarks, s.size, s.padding)
        crop = F.warp_crop(rgb, m, s.size)
        face = len(records)
        name = f"{job.key}_{index:06d}_{face}.png"
        write_image_atomic(Path(job.faces_dir) / name, crop, fsync=False)
        records.append(vars(A.FaceRecord(
            face=face, track=tr.id, box=[round(float(v), 2) for v in tf.box], score=round(float(tf.score), 4),
            keyframe=bool(tf.keyframe), landmarks=np.round(tf.landmarks, 2).tolist(),
            matrix=np.round(m, 6).tolist(), size=s.size,
            embedding=[round(float(v), 5) for v in tr.embedding], blur=round(F.blur_score(crop), 2), file=name)))
    if not tracked:
        st.stats["frames_no_face"] += 1
    st.frames[index] = records


def _write_part(job: _Job, st: _ChunkState, end_seen: Optional[int]) -> None:
    doc = {"settings": job.settings.output_key(), "fingerprint": job.fingerprint, "start": st.start, "end": st.end, "last": end_seen,
           "frames": {str(k): v for k, v in st.frames.items()}, "stats": st.stats}
    atomic_write_bytes(_part_path(job.parts_dir, st.start), json.dumps(doc, separators=(",", ":")).encode())


def _run_job(job: _Job) -> dict:
    """Process this worker's chunks of one source, front to back; returns {'error': str|None}."""
    s = job.settings
    chunks = sorted(job.chunks)
    # frame index -> (chunk number, emit?) for the frames this worker must look at
    def owner(i: int) -> Optional[Tuple[int, bool]]:
        for n, (a, b) in enumerate(chunks):
            if a <= i and (b is None or i < b):
                return n, True
            if max(0, a - WARMUP * s.every) <= i < a:
                return n, False
        return None

    lo = max(0, chunks[0][0] - WARMUP * s.every)
    hi = None if any(b is None for _, b in chunks) else max(b for _, b in chunks)
    state: Optional[_ChunkState] = None
    current = -1
    last = -1
    trim = _heap_trimmer()
    try:
        for fr in iter_frames(Path(job.path), every=s.every, start=lo, stop=hi,
                              select=lambda i: owner(i) is not None):
            n, emit = owner(fr.index)
            if n != current:
                if state is not None:
                    _write_part(job, state, last)
                current = n
                state = _ChunkState(job, *chunks[n])
            _faces_of_frame(job, state, fr.index, fr.rgb, emit)
            if state.tracker.scanned:
                trim()      # the full scan is what allocates and frees the big buffers
            last = fr.index
            if emit:
                _tick()
        if state is not None:
            _write_part(job, state, last)
            current = -2
        # chunks past the real end of the file (container counts can overshoot): record them empty
        for n, (a, b) in enumerate(chunks):
            if not _part_path(job.parts_dir, a).exists():
                _write_part(job, _ChunkState(job, a, b), last)
        return {"error": None}
    except InputError as e:
        return {"error": str(e)}


# ---- parent side ------------------------------------------------------------------------------

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


def _source_key(path: Path, taken: Dict[str, str]) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in (path.stem if path.is_file() else path.name))
    key = stem or "source"
    if key in taken and taken[key] != str(path):
        key = f"{key}_{hashlib.sha1(str(path).encode()).hexdigest()[:6]}"
    return key


def _plan_chunks(n_frames: int, every: int, jobs: int) -> List[Tuple[int, Optional[int]]]:
    proc = max(1, math.ceil(n_frames / every))
    # one chunk per worker for short videos (each chunk start costs a full-frame scan and a warm-up),
    # at most 500 frames per chunk for long ones (the unit of resume and of memory in a worker)
    per = min(500, max(60, math.ceil(proc / jobs)))
    span = per * every
    starts = list(range(0, max(n_frames, 1), span))
    return [(a, a + span if k < len(starts) - 1 else None) for k, a in enumerate(starts)]


def _iter_parts(parts_dir: Path, settings: ExtractSettings, fp: dict):
    """Finished chunk documents of one source that match these settings and this file, one at a time
    (a long video has many: they are never all held in memory together)."""
    if not parts_dir.is_dir():
        return
    key = settings.output_key()
    for p in sorted(parts_dir.glob("*.json")):
        try:
            doc = json.loads(p.read_bytes())
            ok = (doc.get("settings") == key and doc.get("fingerprint") == fp
                  and isinstance(doc.get("frames"), dict) and int(doc["start"]) >= 0)
        except (ValueError, KeyError, TypeError, AttributeError):
            ok = False
        if ok:
            yield doc       # a foreign or damaged part is skipped (its chunk is redone)


def _load_parts(parts_dir: Path, settings: ExtractSettings, fp: dict) -> Dict[int, Tuple[Optional[int], int]]:
    """Chunk start -> (chunk end, number of frames recorded), for the finished chunks of one source."""
    return {int(doc["start"]): (doc.get("end"), len(doc["frames"])) for doc in _iter_parts(parts_dir, settings, fp)}


class _Merge:
    """The frames of a source's finished chunks as one stream in index order, for
    `AlignmentsStore.put`: one chunk document in memory at a time. Counts the chunks and adds their
    face counts to `stats` as it goes."""

    def __init__(self, parts_dir: Path, settings: ExtractSettings, fp: dict, stats: dict):
        self.parts_dir, self.settings, self.fp, self.stats = parts_dir, settings, fp, stats
        self.chunks = 0

    def __iter__(self) -> Iterator[Tuple[int, List[dict]]]:
        last = -1
        for doc in _iter_parts(self.parts_dir, self.settings, self.fp):     # in chunk order
            self.chunks += 1
            for k, v in doc.get("stats", {}).items():
                self.stats[k] = self.stats.get(k, 0) + v
            for i, faces in sorted((int(k), v) for k, v in doc["frames"].items()):
                if i > last:    # chunks of one plan never overlap; were one to, its first record is kept
                    last = i
                    yield i, faces


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
    if s.detector not in F.DETECTORS:
        raise InputError(f"unknown detector {s.detector!r}; choose from {', '.join(F.DETECTORS)}")
    if not 32 <= s.size <= 1024:
        raise InputError(f"--size must be between 32 and 1024, got {s.size}")
    if s.every < 1 or s.detect_every < 1 or s.embed_every < 1 or s.scan_every < 1:
        raise InputError("--every, --detect-every, --scan-every and --embed-every must be >= 1")
    faces_dir = Path(faces_dir)
    if faces_dir.exists() and not faces_dir.is_dir():
        raise InputError(f"output is not a folder: {faces_dir}")
    aln_path = Path(alignments_path) if alignments_path else faces_dir / "alignments.json"
    summary = ExtractSummary(faces_dir=str(faces_dir), alignments=str(aln_path))

    if jobs is not None and jobs < 1:
        raise InputError(f"--jobs must be >= 1, got {jobs}")
    if not 1 <= s.refeed <= 32:
        raise InputError(f"--re-feed must be 1..32, got {s.refeed}")

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


def _extract_sources(infos: List[Tuple[Path, VideoInfo]], store: A.AlignmentsStore, s: ExtractSettings,
                     ref: Optional[List[float]], faces_dir: Path, jobs: Optional[int],
                     progress: Optional[Callable[[int, int], None]], summary: ExtractSummary) -> None:
    """Plan, run the workers, merge each source's chunks into `store` and save it; then faces.json."""
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
        todo = [c for c in chunks if done.get(c[0], (-1,))[0] != c[1]]
        for c in chunks:
            if c not in todo:
                summary.frames_resumed += done[c[0]][1]
        for a in set(done) - {c[0] for c in chunks if c not in todo}:
            _part_path(parts_dir, a).unlink(missing_ok=True)    # cut differently (other --jobs): redone
        for c in todo:      # chunk starts are multiples of `every`
            total += len(range(c[0], c[1] if c[1] is not None else max(info.frames, c[0] + 1), s.every))
        plans.append((p, info, rec, parts_dir, todo))

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
            if pool is not None and not any(t for *_, t in plans[k + 1:]):
                # no work left: let the workers go (~300 MB each on 1080p) before merging and saving
                pool.close()
                pool.join()
                pool = None
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
            store.save()        # after each source: an interrupted run keeps the sources it finished
            if src.header["complete"]:
                shutil.rmtree(parts_dir, ignore_errors=True)
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
