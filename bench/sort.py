"""Sorting a faces folder: the faceswap way (read every crop, recompute its scores) vs `veriswap sort`.

baseline: what faceswap's `tools sort` / DeepFaceLab's `sort` do for a folder of crops: read every PNG with
          OpenCV, blur = variance of the Laplacian of the grey crop, and the identity embedding per face with
          dlib directly (HOG on the crop at upsample 1, as face_recognition does by default, a box over the
          crop's face area where HOG finds none, the 68-point shape predictor, the ResNet descriptor); then
          the distance of each face to the folder's median embedding, and the ranking.
ours:     `swap.sort.sort_faces(FACES_DIR, SortSettings(by="identity", reject_blur=...))`: the same two
          scores read from the faces.json that extract wrote, the same ranking and rejections, and sort.json
          written. `--rescore` (ours reading every crop, as after editing crops) is timed too.

The same folder in the same run; dlib's models are loaded before the baseline is timed (ours does not need
them). Variants alternate --repeats times; the median is kept. The faces folder is made once from real
faces: `veriswap extract` on two generated clips of the packaged photos (astronaut, Grace Hopper), cached
under --cache.

    python bench/sort.py                    # ~300 faces, 3 repeats, about 4 minutes on 2 CPU cores
    python bench/sort.py --frames 1000 --no-rescore
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_faces(cache: Path, frames: int, other: int) -> Path:
    """FACES_DIR from `extract` on clips of real faces (kept between runs): mostly one person (the astronaut,
    with HOG's false positives on her mission patch) and a few frames of another (Grace Hopper), as a
    folder looks before it is cleaned."""
    from swap.extract import extract
    from swap.samples import make_face_video

    faces = cache / f"faces_{frames}_{other}"
    if (faces / "faces.json").is_file():
        return faces
    cache.mkdir(parents=True, exist_ok=True)     # a fresh clone has no bench_out/ yet
    clips = [make_face_video(cache / f"{p}_{n}.mp4", p, frames=n, audio=False)
             for p, n in (("astronaut", frames), ("grace_hopper", other))]
    s = extract(clips, faces)
    print(f"made {faces}: {s.faces_written} faces from {s.frames_read} frames in {s.seconds:.1f} s", flush=True)
    return faces


def baseline(faces: Path, models) -> Tuple[Dict[str, float], Dict[str, float]]:
    """(blur, identity distance) per crop, recomputed from the pixels."""
    import cv2
    import dlib

    detector, predictor, recogniser = models
    names = sorted(p.name for p in faces.iterdir() if p.suffix == ".png")
    blur, embs = {}, {}
    for n in names:
        bgr = cv2.imread(str(faces / n))
        blur[n] = float(cv2.Laplacian(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        dets = detector(rgb, 1)
        h, w = rgb.shape[:2]
        rect = max(dets, key=lambda r: r.area()) if len(dets) else \
            dlib.rectangle(int(0.15 * w), int(0.15 * h), int(0.85 * w), int(0.9 * h))
        embs[n] = np.array(recogniser.compute_face_descriptor(rgb, predictor(rgb, rect)), np.float32)
    med = np.median(np.stack(list(embs.values())), 0)
    ident = {n: float(np.linalg.norm(e - med)) for n, e in embs.items()}
    return blur, ident


def ours(faces: Path, rescore: bool, reject_blur: float, max_distance: float) -> Tuple[Dict[str, float], Dict[str, float]]:
    from swap.sort import SortSettings, sort_faces

    r = sort_faces(faces, SortSettings(by="identity", reject_blur=reject_blur, max_distance=max_distance,
                                       rescore=rescore))
    return {f.file: f.blur for f in r.faces}, {f.file: f.identity for f in r.faces}


def spearman(a: List[float], b: List[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200, help="frames of the astronaut clip (1-2 faces each: HOG "
                    "also fires on her mission patch in about half of them)")
    ap.add_argument("--other-frames", type=int, default=20, help="frames of the other person's clip (Grace Hopper)")
    ap.add_argument("--max-distance", type=float, default=0.55, help="ours' --max-distance; the baseline's faces "
                    "over it are compared with ours")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reject-blur", type=float, default=10.0, help="ours' --reject-blur (any value: it costs nothing)")
    ap.add_argument("--no-rescore", action="store_true", help="skip timing ours with --rescore")
    ap.add_argument("--cache", type=Path, default=ROOT / "bench_out" / "sort")
    a = ap.parse_args()
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")

    faces = make_faces(a.cache, a.frames, a.other_frames)
    n = sum(1 for p in faces.iterdir() if p.suffix == ".png")
    import dlib
    from swap.faces import models_dir
    md = models_dir()
    models = (dlib.get_frontal_face_detector(), dlib.shape_predictor(os.path.join(md, "shape_predictor_68_face_landmarks.dat")),
              dlib.face_recognition_model_v1(os.path.join(md, "dlib_face_recognition_resnet_model_v1.dat")))

    variants = {"baseline": lambda: baseline(faces, models), "ours": lambda: ours(faces, False, a.reject_blur, a.max_distance)}
    if not a.no_rescore:
        variants["ours --rescore"] = lambda: ours(faces, True, a.reject_blur, a.max_distance)
    times: Dict[str, List[float]] = {k: [] for k in variants}
    results = {}
    for _ in range(a.repeats):
        for k, fn in variants.items():
            t = time.perf_counter()
            results[k] = fn()
            times[k].append(time.perf_counter() - t)

    print(f"veriswap sort benchmark: {n} aligned 256 px faces ({faces}), blur + identity distance to the "
          f"folder's median, median of {a.repeats} ({os.cpu_count()} CPUs)")
    base = statistics.median(times["baseline"])
    print(f"{'variant':<16}{'seconds':>9}{'faces/s':>10}{'ratio':>9}")
    for k, ts in times.items():
        t = statistics.median(ts)
        print(f"{k:<16}{t:>9.3f}{n / t:>10.1f}{base / t:>8.1f}x")
    bb, bi = results["baseline"]
    for k in variants:
        if k == "baseline":
            continue
        ob, oi = results[k]
        names = sorted(bb)
        blur_diff = max(abs(bb[x] - ob[x]) / max(bb[x], 1e-9) for x in names)
        r = spearman([bi[x] for x in names], [oi[x] for x in names])
        far_b = {x for x in names if bi[x] > a.max_distance}
        far_o = {x for x in names if oi[x] > a.max_distance}
        print(f"{k} vs baseline: blur max relative difference {blur_diff:.1e}; identity distance rank correlation "
              f"{r:.3f}, mean |difference| {np.mean([abs(bi[x] - oi[x]) for x in names]):.3f}; faces over "
              f"{a.max_distance:g}: {len(far_o)} vs {len(far_b)} ({len(far_o & far_b)} in both)")


if __name__ == "__main__":
    main()
