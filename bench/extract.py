"""Extract throughput and landmark agreement: the straightforward dlib loop vs `veriswap extract`.

baseline: what face_recognition does by default, frame by frame in one process: PyAV decode to RGB,
          full-resolution dlib HOG with upsample 1 (`face_locations`), then the 68-point shape
          predictor on each box (`face_landmarks`). Nothing else (no crops, no embeddings, no files).
ours:     `swap.extract.extract` with default settings and all cores (`--jobs`): detection, tracking,
          smoothing, alignment, 256 px PNG crops, identity embeddings, alignments file. Timed end to end
          (worker start-up and model loading included, as for the baseline's model loading).

Clips (640x480 H.264, cached under --cache, real faces from packaged photos):
  astronaut-smooth    swap.samples.make_face_video (one slow sine sweep of pan/zoom/tilt)
  astronaut-handheld  faster pan/zoom/tilt (+-10 deg), hand-held shake, sensor noise, CRF 23, two hard cuts
                      (reframing) and a 1.2 s cut-away to a scene with no face
  grace-handheld      the same motion on Grace Hopper (another person, another photo)

For each clip the variants alternate --repeats times (fresh process each); fps is the median. The landmark
difference is ours vs the baseline on the same frames, faces matched per frame by eye-centre distance, in %
of the baseline face's inter-ocular distance (eye centres = mean of landmarks 36-41 and 42-47). Both are
also compared with the known truth (the photo's landmarks mapped through the generated motion). Peak RSS:
baseline = its process; ours = parent + worker processes summed (psutil, sampled every 50 ms).

    python bench/extract.py                                   # three 250-frame clips, 3 repeats
    python bench/extract.py --clips astronaut-smooth --repeats 1
    python bench/extract.py --memory-minutes 1,3 --memory-size 1920x1080   # peak RSS of extract on long clips
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLIPS = ("astronaut-smooth", "astronaut-handheld", "grace-handheld")
TARGET_RATIO, TARGET_DIFF, TARGET_RSS_MB = 4.0, 3.0, 1536


# ---- clips ------------------------------------------------------------------------------------

def _photo(clip: str) -> str:
    return "grace_hopper" if clip.startswith("grace") else "astronaut"


def handheld_matrix(photo_shape, i: int, n: int, fps: float, size: Tuple[int, int], shake: np.ndarray) -> np.ndarray:
    """Photo px -> frame px at frame i of the hand-held clip (pan, zoom, tilt, shake, two reframing cuts)."""
    import cv2

    w, h = size
    ph, pw = photo_shape[:2]
    t = i / fps
    seg = 0 if i < 0.4 * n else 1 if i < 0.7 * n else 2          # hard cuts at 40% and 70%
    zoom = (1.0, 1.3, 0.85)[seg] * (1.0 + 0.12 * math.sin(2 * math.pi * t / 4.1))
    scale = min(w / pw, h / ph) * 0.9 * zoom
    angle = 10.0 * math.sin(2 * math.pi * t / 2.7) + (0.0, -6.0, 5.0)[seg]
    cx = w / 2 + (0.0, 0.10, -0.08)[seg] * w + 0.10 * w * math.sin(2 * math.pi * t / 3.0) + shake[i, 0]
    cy = h / 2 + (0.0, 0.08, -0.03)[seg] * h + 0.05 * h * math.sin(2 * math.pi * t / 2.3 + 1.0) + shake[i, 1]
    m = cv2.getRotationMatrix2D((pw / 2, ph / 2), angle, scale)
    m[0, 2] += cx - pw / 2
    m[1, 2] += cy - ph / 2
    return m


def _shake(n: int, seed: int, amp: float) -> np.ndarray:
    """Hand-held camera shake: an AR(1) velocity random walk pulled back to 0, std about `amp` px."""
    rng = np.random.default_rng(seed)
    pos = np.zeros((n, 2))
    v = np.zeros(2)
    p = np.zeros(2)
    for i in range(n):
        v = 0.7 * v + rng.normal(0, amp * 0.35, 2) - 0.08 * p
        p = p + v
        pos[i] = p
    return pos


def cutaway(n: int) -> range:
    return range(int(0.55 * n), int(0.55 * n) + 30)             # 1.2 s at 25 fps with no face


def make_clip(path: Path, clip: str, frames: int, size: Tuple[int, int] = (640, 480), fps: int = 25,
              crf: int = 23) -> Path:
    """Write a clip (cached) and its ground-truth motion (`path.with_suffix('.npz')`)."""
    import av
    import cv2

    from swap.samples import load_photo, make_face_video, motion_matrix

    path = Path(path)
    truth = path.with_suffix(".npz")
    if path.is_file() and truth.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    photo = load_photo(_photo(clip))
    tmp = path.with_name(".gen_" + path.name)
    if clip.endswith("smooth"):
        make_face_video(tmp, _photo(clip), frames, size=size, fps=fps)
        mats = np.stack([motion_matrix(photo.shape, i / frames, size) for i in range(frames)])
        face = np.ones(frames, bool)
    else:
        from skimage import data

        shake = _shake(frames, 7 if "grace" in clip else 3, amp=0.006 * size[0])
        mats = np.stack([handheld_matrix(photo.shape, i, frames, fps, size, shake) for i in range(frames)])
        face = np.ones(frames, bool)
        away = cv2.resize(data.coffee(), size, interpolation=cv2.INTER_AREA)
        rng = np.random.default_rng(1)
        noise = [rng.normal(0, 3.0, (size[1], size[0], 3)).astype(np.float32) for _ in range(7)]
        with av.open(str(tmp), mode="w") as c:
            vs = c.add_stream("libx264", rate=fps)
            vs.width, vs.height = size
            vs.pix_fmt = "yuv420p"
            vs.options = {"crf": str(crf), "preset": "veryfast"}
            for i in range(frames):
                t = i / fps
                if i in cutaway(frames):
                    img = away.astype(np.float32)
                    face[i] = False
                else:
                    img = cv2.warpAffine(photo, mats[i], size, flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
                img *= 1.0 + 0.15 * math.sin(2 * math.pi * t / 5.0)
                img += noise[i % len(noise)]
                f = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
                f.pts, f.time_base = i, Fraction(1, fps)
                for p in vs.encode(f):
                    c.mux(p)
            for p in vs.encode(None):
                c.mux(p)
    np.savez(truth, mats=mats, face=face)
    os.replace(tmp, path)
    return path


def truth_landmarks(clip: str, video: Path) -> Tuple[np.ndarray, np.ndarray]:
    """(n, 68, 2) true landmarks and (n,) bool 'face visible': dlib's landmarks of the photo itself
    (rendered at the clip's first frame, then mapped back onto the photo) sent through each frame's motion."""
    import cv2

    from swap import faces as F
    from swap.samples import load_photo

    d = np.load(video.with_suffix(".npz"))
    mats, face = d["mats"], d["face"]
    photo = load_photo(_photo(clip))
    size = (640, 480)
    m0 = mats[0]
    frame0 = cv2.warpAffine(photo, m0, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    box = max(F.detect(frame0), key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    pts0 = F.landmarks(frame0, box[:4])
    inv = cv2.invertAffineTransform(m0)
    on_photo = pts0 @ inv[:, :2].T + inv[:, 2]
    return np.stack([on_photo @ m[:, :2].T + m[:, 2] for m in mats]).astype(np.float32), face


# ---- the two variants (each runs in its own process) ------------------------------------------

class RssPoller:
    """Peak of (this process + all its descendants) RSS, sampled every `interval` seconds."""

    def __init__(self, interval: float = 0.05):
        import psutil

        self.proc, self.interval = psutil.Process(), interval
        self.peak_total = self.peak_parent = self.peak_child = 0
        self.max_children = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        import psutil

        try:
            parent = self.proc.memory_info().rss
            kids = []
            for c in self.proc.children(recursive=True):
                try:
                    kids.append(c.memory_info().rss)
                except psutil.Error:
                    pass
        except psutil.Error:
            return
        self.peak_parent = max(self.peak_parent, parent)
        self.peak_child = max([self.peak_child] + kids)
        self.peak_total = max(self.peak_total, parent + sum(kids))
        self.max_children = max(self.max_children, len(kids))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssPoller":
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()
        self._sample()

    def mb(self) -> dict:
        # ru_maxrss catches peaks between samples (largest single process only)
        self_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        kid_max = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        return {"peak_total_mb": self.peak_total / 2**20, "peak_parent_mb": max(self.peak_parent, self_max) / 2**20,
                "peak_worker_mb": max(self.peak_child, kid_max) / 2**20, "workers": self.max_children}


def cpu_seconds() -> float:
    """User + system CPU time of this process and its waited-for children (the extract workers)."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def run_baseline(video: Path) -> Tuple[dict, Dict[int, List[list]]]:
    import av
    import dlib

    from swap.faces import models_dir

    t0, c0 = time.perf_counter(), cpu_seconds()
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(os.path.join(models_dir(), "shape_predictor_68_face_landmarks.dat"))
    out: Dict[int, List[list]] = {}
    with av.open(str(video)) as c:
        for i, frame in enumerate(c.decode(c.streams.video[0])):
            rgb = frame.to_ndarray(format="rgb24")
            faces = []
            for r in detector(rgb, 1):                    # face_recognition.face_locations(img) default
                shape = predictor(rgb, r)                   # face_recognition.face_landmarks(img, boxes)
                faces.append([[p.x, p.y] for p in shape.parts()])
            out[i] = faces
    dt = time.perf_counter() - t0
    return {"seconds": dt, "cpu": cpu_seconds() - c0, "frames": len(out), "peak_total_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "workers": 0}, out


def run_ours(video: Path, jobs: Optional[int], keep: Optional[Path] = None) -> Tuple[dict, Dict[int, List[list]]]:
    from swap import alignments as A
    from swap.extract import ExtractSettings, extract

    work = Path(tempfile.mkdtemp(prefix="bench_extract_", dir=keep))
    try:
        with RssPoller() as rss:
            t0, c0 = time.perf_counter(), cpu_seconds()
            s = extract([video], work / "faces", settings=ExtractSettings(), jobs=jobs)
            dt, cpu = time.perf_counter() - t0, cpu_seconds() - c0     # the pool is joined: workers counted
        mem = rss.mb()          # before this process loads the alignments file below
        src = A.load(work / "faces" / "alignments.json").source_for(video)
        out = {i: [f.landmarks for f in fs] for i, fs in src.frames.items()}
        return {"seconds": dt, "cpu": cpu, "frames": s.frames_read, "faces": s.faces_written, **mem}, out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _child(variant: str, video: str, jobs: Optional[int], dump: str) -> None:
    res, lms = (run_baseline if variant == "baseline" else lambda v: run_ours(v, jobs))(Path(video))
    if dump:
        Path(dump).write_text(json.dumps({str(k): v for k, v in lms.items()}))
    print("RESULT " + json.dumps(res), flush=True)


def spawn(variant: str, video: Path, jobs: Optional[int], dump: Optional[Path] = None) -> dict:
    cmd = [sys.executable, __file__, "--_variant", variant, "--_video", str(video), "--_dump", str(dump or "")]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    lines = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
    if out.returncode or not lines:
        sys.exit(f"{variant} on {video} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


# ---- comparison -------------------------------------------------------------------------------

def _eyes(p: np.ndarray) -> Tuple[np.ndarray, float]:
    le, re = p[36:42].mean(0), p[42:48].mean(0)
    return (le + re) / 2, float(np.linalg.norm(le - re))


def match(ref: List[np.ndarray], other: List[np.ndarray]) -> List[Tuple[int, int]]:
    """Greedy per-frame matching by eye-midpoint distance (< half the reference's inter-ocular distance)."""
    pairs = []
    for a, r in enumerate(ref):
        c, iod = _eyes(r)
        d = [float(np.linalg.norm(_eyes(o)[0] - c)) for o in other]
        pairs += [(d[b], a, b) for b in range(len(other)) if d[b] < 0.5 * iod]
    used_a, used_b, out = set(), set(), []
    for _, a, b in sorted(pairs):
        if a not in used_a and b not in used_b:
            used_a.add(a), used_b.add(b), out.append((a, b))
    return out


def compare(base: Dict[str, list], ours: Dict[str, list], truth: np.ndarray, visible: np.ndarray) -> dict:
    diffs, person, n_base, n_ours, extra, missed = [], [], 0, 0, 0, 0
    noise, prev = [], None      # the baseline's own frame-to-frame wobble around the true motion
    err = {"baseline": [], "ours": []}
    missed_true = {"baseline": 0, "ours": 0}
    for i in range(len(truth)):
        b = [np.asarray(p, np.float32) for p in base.get(str(i), [])]
        o = [np.asarray(p, np.float32) for p in ours.get(str(i), [])]
        n_base, n_ours = n_base + len(b), n_ours + len(o)
        m = match(b, o)
        for a, c in m:
            diffs.append(float(np.linalg.norm(b[a] - o[c], axis=1).mean()) / _eyes(b[a])[1])
        missed += len(b) - len(m)
        extra += len(o) - len(m)
        if not visible[i]:
            prev = None
        else:
            hits = {}
            for name, faces in (("baseline", b), ("ours", o)):
                hit = match([truth[i]], faces)
                if hit:
                    hits[name] = faces[hit[0][1]]
                    err[name].append(float(np.linalg.norm(hits[name] - truth[i], axis=1).mean()) / _eyes(truth[i])[1])
                else:
                    missed_true[name] += 1
            cur = hits["baseline"] - truth[i] if "baseline" in hits else None
            if cur is not None and prev is not None:
                noise.append(float(np.linalg.norm(cur - prev, axis=1).mean()) / _eyes(truth[i])[1] / math.sqrt(2))
            prev = cur
            if len(hits) == 2:      # the person (not a false positive): ours vs baseline
                person.append(float(np.linalg.norm(hits["ours"] - hits["baseline"], axis=1).mean())
                              / _eyes(hits["baseline"])[1])
    return {"diff_pct": 100 * float(np.mean(diffs)) if diffs else float("nan"),
            "person_diff_pct": 100 * float(np.mean(person)) if person else float("nan"),
            "baseline_noise_pct": 100 * float(np.mean(noise)) if noise else float("nan"),
            "diff_p95_pct": 100 * float(np.percentile(diffs, 95)) if diffs else float("nan"),
            "matched": len(diffs), "baseline_faces": n_base, "ours_faces": n_ours,
            "only_baseline": missed, "only_ours": extra, "true_frames": int(visible.sum()),
            "err_baseline_pct": 100 * float(np.mean(err["baseline"])), "err_ours_pct": 100 * float(np.mean(err["ours"])),
            "true_missed_baseline": missed_true["baseline"], "true_missed_ours": missed_true["ours"]}


def machine_line(jobs: Optional[int]) -> str:
    cpu = platform.processor()
    if os.path.exists("/proc/cpuinfo"):
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), cpu)
    import av
    import cv2
    import dlib
    return (f"machine: {cpu}, {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}, "
            f"dlib {dlib.__version__}, OpenCV {cv2.__version__}, PyAV {av.__version__}; ours uses "
            f"{jobs or os.cpu_count()} worker process(es)")


# ---- memory check -------------------------------------------------------------------------------

def make_long_clip(cache: Path, minutes: float, size: Tuple[int, int], fps: int = 25) -> Path:
    """A long hand-held clip of the astronaut at `size` (no cut-away), cached."""
    import av
    import cv2

    from swap.samples import load_photo

    path = cache / f"long_{size[0]}x{size[1]}_{minutes:g}min.mp4"
    if path.is_file():
        return path
    cache.mkdir(parents=True, exist_ok=True)   # a fresh clone has no bench_out/ yet
    n = int(round(minutes * 60 * fps))
    print(f"generating {path} ({n} frames; cached for later runs)...", flush=True)
    photo = load_photo("astronaut")
    shake = _shake(1000, 5, amp=0.006 * size[0])     # the motion repeats every 1000 frames (40 s)
    tmp = path.with_name(".gen_" + path.name)
    with av.open(str(tmp), mode="w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height = size
        vs.pix_fmt = "yuv420p"
        vs.options = {"crf": "23", "preset": "veryfast"}
        for i in range(n):
            m = handheld_matrix(photo.shape, i % 1000, 1000, fps, size, shake)
            img = cv2.warpAffine(photo, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, fps)
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    os.replace(tmp, path)
    return path


def memory_check(a) -> None:
    w, h = (int(v) for v in a.memory_size.lower().split("x"))
    print(machine_line(a.jobs))
    rows = []
    for minutes in (float(m) for m in a.memory_minutes.split(",")):
        video = make_long_clip(a.cache, minutes, (w, h))
        r = spawn("ours", video, a.jobs)
        rows.append((minutes, r))
        print(f"  {minutes:g} min: {r['frames']} frames in {r['seconds']:.0f} s ({r['frames'] / r['seconds']:.1f} fps), "
              f"peak RSS {r['peak_total_mb']:.0f} MB total", flush=True)
    print(f"\nveriswap extract peak RSS on {w}x{h} H.264 (parent + its {rows[0][1]['workers']} child processes "
          f"summed, sampled every 50 ms; target < {TARGET_RSS_MB} MB on 10 minutes)")
    print(f"{'minutes':>7} {'frames':>7} {'faces':>7} {'seconds':>8} {'fps':>6} {'total MB':>9} {'parent MB':>10} {'worker MB':>10}")
    for minutes, r in rows:
        print(f"{minutes:7g} {r['frames']:7d} {r['faces']:7d} {r['seconds']:8.0f} {r['frames'] / r['seconds']:6.1f} {r['peak_total_mb']:9.0f} "
              f"{r['peak_parent_mb']:10.0f} {r['peak_worker_mb']:10.0f}"
              f"  {'PASS' if r['peak_total_mb'] < TARGET_RSS_MB else 'MISS'}")


# ---- main ---------------------------------------------------------------------------------------

ABLATION = [("defaults (smoothing, region re-detection every 5, full scan every 25)", {}),
            ("defaults + --re-feed 5", {"refeed": 5}),
            ("no smoothing", {"smooth": False}),
            ("no smoothing, --re-feed 5", {"smooth": False, "refeed": 5}),
            ("no smoothing, region re-detection every frame", {"smooth": False, "detect_every": 1}),
            ("no smoothing, full-frame scan every frame (the baseline's work)",
             {"smooth": False, "detect_every": 1, "scan_every": 1})]


def ablation(a, clips: List[str]) -> None:
    """Where does the disagreement with the baseline come from? Ours with its shortcuts taken away one by one,
    scored against the same baseline run and against the truth (accuracy only: no timing)."""
    from swap import alignments as A
    from swap.extract import ExtractSettings, extract

    for clip in clips:
        video = make_clip(a.cache / f"{clip}_{a.frames}.mp4", clip, a.frames)
        truth, visible = truth_landmarks(clip, video)
        base = {str(k): v for k, v in run_baseline(video)[1].items()}
        print(f"{clip}: ours with ... -> the person vs baseline / vs truth, % of IOD")
        for name, kw in ABLATION:
            work = Path(tempfile.mkdtemp(prefix="bench_extract_"))
            try:
                extract([video], work / "faces", settings=ExtractSettings(**kw), jobs=a.jobs)
                src = A.load(work / "faces" / "alignments.json").source_for(video)
                ours = {str(i): [f.landmarks for f in fs] for i, fs in src.frames.items()}
            finally:
                shutil.rmtree(work, ignore_errors=True)
            c = compare(base, ours, truth, visible)
            print(f"  {name:<68} {c['person_diff_pct']:5.2f}% {c['err_ours_pct']:5.2f}%", flush=True)
        print(f"  {'(baseline vs truth; its frame-to-frame noise)':<68} {c['err_baseline_pct']:5.2f}% "
              f"{c['baseline_noise_pct']:5.2f}%")


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default=",".join(CLIPS), help=f"comma list of {', '.join(CLIPS)}")
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=None, help="ours: worker processes (default: all cores)")
    ap.add_argument("--cache", type=Path, default=ROOT / "bench_out" / "extract")
    ap.add_argument("--memory-minutes", default=None, help="memory check instead: comma list of clip lengths")
    ap.add_argument("--memory-size", default="1920x1080")
    ap.add_argument("--ablation", action="store_true",
                    help="landmark agreement only: ours with smoothing / region re-detection / full scans varied")
    ap.add_argument("--_variant", help=argparse.SUPPRESS)
    ap.add_argument("--_video", help=argparse.SUPPRESS)
    ap.add_argument("--_dump", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._variant:
        return _child(a._variant, a._video, a.jobs, a._dump)
    if a.memory_minutes:
        return memory_check(a)

    clips = [c.strip() for c in a.clips.split(",") if c.strip()]
    for c in clips:
        if c not in CLIPS:
            ap.error(f"unknown clip {c!r}; choose from {', '.join(CLIPS)}")
    if a.ablation:
        return ablation(a, clips)
    print(machine_line(a.jobs))
    rows = []
    for clip in clips:
        video = make_clip(a.cache / f"{clip}_{a.frames}.mp4", clip, a.frames)
        truth, visible = truth_landmarks(clip, video)
        runs: Dict[str, List[dict]] = {"baseline": [], "ours": []}
        dumps = {v: a.cache / f".{clip}_{v}.json" for v in runs}
        for rep in range(a.repeats):
            for v in ("baseline", "ours"):
                r = spawn(v, video, a.jobs, dumps[v] if rep == 0 else None)
                runs[v].append(r)
                print(f"  {clip} {v:8s} run {rep + 1}: {r['frames'] / r['seconds']:6.1f} fps", flush=True)
        cmp_ = compare(json.loads(dumps["baseline"].read_text()), json.loads(dumps["ours"].read_text()), truth, visible)
        for p in dumps.values():
            p.unlink(missing_ok=True)
        rows.append((clip, runs, cmp_))

    print(f"\nveriswap extract benchmark: 640x480 H.264, {a.frames} frames per clip, median of {a.repeats} "
          f"(fps = frames / wall seconds, end to end; CPU = user+sys seconds of all processes per frame)")
    print(f"{'clip':<19}{'variant':<9}{'fps':>6}{'ratio':>7}{'CPU ms/f':>9}{'ratio':>7}{'peak RSS MB':>12}"
          f"{'faces':>7}{'vs truth':>9}{'missed':>7}")
    ratios, diffs, pdiffs = [], [], []
    for clip, runs, c in rows:
        fb = statistics.median(r["frames"] / r["seconds"] for r in runs["baseline"])
        fo = statistics.median(r["frames"] / r["seconds"] for r in runs["ours"])
        cb = statistics.median(1000 * r["cpu"] / r["frames"] for r in runs["baseline"])
        co = statistics.median(1000 * r["cpu"] / r["frames"] for r in runs["ours"])
        mb = max(r["peak_total_mb"] for r in runs["baseline"])
        mo = max(r["peak_total_mb"] for r in runs["ours"])
        ratios.append(fo / fb)
        diffs.append(c["diff_pct"])
        pdiffs.append(c["person_diff_pct"])
        print(f"{clip:<19}{'baseline':<9}{fb:6.1f}{1.0:7.2f}{cb:9.1f}{1.0:7.2f}{mb:12.0f}{c['baseline_faces']:7d}"
              f"{c['err_baseline_pct']:8.2f}%{c['true_missed_baseline']:7d}")
        print(f"{'':<19}{'ours':<9}{fo:6.1f}{fo / fb:7.2f}{co:9.1f}{cb / co:7.2f}{mo:12.0f}{c['ours_faces']:7d}"
              f"{c['err_ours_pct']:8.2f}%{c['true_missed_ours']:7d}")
        print(f"{'':<19}landmarks ours vs baseline, % of IOD: all matched faces {c['diff_pct']:.2f} (p95 {c['diff_p95_pct']:.1f}; "
              f"{c['matched']} matched, {c['only_baseline']} only in baseline, {c['only_ours']} only in ours); "
              f"the person {c['person_diff_pct']:.2f}; baseline's own frame-to-frame noise {c['baseline_noise_pct']:.2f}")
    print(f"\nspeed: ours {min(ratios):.2f}x-{max(ratios):.2f}x the baseline's fps (target >= {TARGET_RATIO:.0f}x): "
          f"{'PASS' if min(ratios) >= TARGET_RATIO else 'MISS'}")
    print(f"landmarks, all matched faces: {min(diffs):.2f}-{max(diffs):.2f}% of inter-ocular distance (target < "
          f"{TARGET_DIFF:.0f}%): {'PASS' if max(diffs) < TARGET_DIFF else 'MISS'}; the person only: "
          f"{min(pdiffs):.2f}-{max(pdiffs):.2f}%: {'PASS' if max(pdiffs) < TARGET_DIFF else 'MISS'}")
    print("faces: faces written over all frames (HOG also fires on the astronaut's mission patch); vs truth: mean landmark\n"
          "error against the generated motion, % of IOD, on frames that show the person; missed: such frames where\n"
          "that variant has no face there. Baseline noise: how much its landmarks wobble around the true motion from\n"
          "one frame to the next (per frame, /sqrt 2): a smoothed extractor cannot agree with it better than about that.")


if __name__ == "__main__":
    main()
