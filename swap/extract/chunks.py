"""Extract's unit of work and of resume: a chunk of consecutive frames of one source, processed by a
worker process (detect / track / align / embed, crops written as it goes) and recorded atomically in
FACES_DIR/.parts/KEY/; the parent reads the finished chunks back as one stream (`_Merge`)."""
from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from provenance.fsutil import atomic_write_bytes

from .. import alignments as A
from .. import faces as F
from ..errors import InputError
from ..faces.tracking import FaceTracker
from ..video import iter_frames, write_image_atomic
from .settings import ExtractSettings

PARTS = ".parts"
WARMUP = 8                      # frames processed before a chunk starts, so tracks and smoothing are warm
# a worker records what it has done at least this often (issue 16: a kill loses <= ~10 s of a worker's work,
# not a whole chunk of up to 500 frames); the environment variable is for tests and bench/reliability.py
PART_SECONDS = float(os.environ.get("VERISWAP_EXTRACT_PART_SECONDS", "10"))


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
    def __init__(self, job: _Job, start: int, end: Optional[int], tracker: Optional[FaceTracker] = None):
        s = job.settings
        self.start, self.end = start, end
        self.frames: Dict[int, list] = {}
        self.stats = {"faces_found": 0, "faces_filtered": 0, "frames_no_face": 0}
        self.t0 = time.monotonic()
        freq = max(job.fps, 1.0) / s.every
        self.tracker = tracker or FaceTracker(s.detector, s.upsample, s.min_size, s.detect_every,
                                              s.smooth and not job.is_image, freq, s.min_cutoff, s.beta,
                                              scan_every=s.scan_every, refeed=s.refeed)

    def split(self, job: _Job, at: int) -> "_ChunkState":
        """End this part at frame `at` (it is recorded as [start, at)); the rest of the chunk, [at, end), goes
        on in the returned state with the same tracker (the tracks run on: no warm-up, no new scan)."""
        rest = _ChunkState(job, at, self.end, self.tracker)
        self.end = at
        return rest


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
            elif emit and state.frames and time.monotonic() - state.t0 >= PART_SECONDS:
                # checkpoint within the chunk: the frames done so far become a part of their own, so a kill
                # loses at most PART_SECONDS of this worker's work (a re-run resumes at `fr.index`)
                rest = state.split(job, fr.index)
                _write_part(job, state, last)
                state = rest
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
    """Part start -> (part end, number of frames recorded), for the finished parts of one source (a chunk, or
    a piece of one a worker recorded on the way: see PART_SECONDS)."""
    return {int(doc["start"]): (doc.get("end"), len(doc["frames"])) for doc in _iter_parts(parts_dir, settings, fp)}


def resume_chunk(done: Dict[int, Tuple[Optional[int], int]], a: int, b: Optional[int]) -> Tuple[List[int], Optional[int]]:
    """For the planned chunk [a, b): (starts of the finished parts that cover it from `a` without a gap,
    where the work resumes: None when they cover all of it)."""
    chain: List[int] = []
    pos = a
    while pos in done:
        end = done[pos][0]
        if end == b:
            return chain + [pos], None
        if end is None or end <= pos or (b is not None and end > b):
            break               # a part of another plan (other --jobs): not this chunk's
        chain.append(pos)
        pos = end
    return chain, pos


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
