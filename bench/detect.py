"""Scoring throughput: the straightforward per-frame loop vs `veriswap detect score`, same detector,
video and machine.

baseline: for every frame: dlib HOG face detection on the full frame (upsample 1, what finds 40 px
          faces), crop 1.3x each box, run the model on that one face (batch 1).
ours:     detect.score.score_video: faces found by the extract stage's tracker (full-frame scan every
          25 frames, optical flow + region re-detection in between), crops batched across frames
          (`--batch-size`), per-track aggregation and the timeline.

Both score every frame (`--frames 0` in `veriswap detect score`) of the same real-face video (the
astronaut moving, 640x480), with the same timm model (random init: speed does not depend on the weights).
Each variant runs `--repeats` times; medians are printed.

    python bench/detect.py                                   # efficientnet_b0 @ 224, 100 frames, CPU
    python bench/detect.py --arch resnet10t --input-size 128 --frames 200

Quality section (`--quality ROOT`, bench/swap_quality.py): swap quality of the labelled swaps in ROOT (a
`bench.detect_recipe` folder: fake*test/, real_test/, photos/), the old rule ("closer to B than to A") and
swap.quality side by side, per swap video and per method, with the seconds each took:

    python bench/detect.py --quality /work/scratch/recipe [--max-faces 16] [--json quality.json]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def prepare(work: Path, frames: int, arch: str, size: int) -> dict:
    from detect.model import DetectorConfig, create_model, normalization, save_weights
    from swap.samples import make_face_video

    work.mkdir(parents=True, exist_ok=True)
    video = work / f"astronaut_{frames}.mp4"
    if not video.exists():
        make_face_video(video, "astronaut", frames=frames, audio=False)
    det = work / f"detector_{arch}_{size}"
    if not (det / "config.json").exists():
        m = create_model(arch)
        mean, std = normalization(m)
        det.mkdir(parents=True, exist_ok=True)
        save_weights(m, det / "model.safetensors")
        DetectorConfig(arch=arch, input_size=size, mean=mean, std=std).save(det)
    return {"video": video, "detector": det}


def baseline(video: Path, detector) -> int:
    from detect.crops import crop_face
    from swap import faces as F
    from swap.video import iter_frames

    n = 0
    cfg = detector.config
    for fr in iter_frames(video):
        for b in F.detect(fr.rgb, "hog", 1):
            if min(b[2] - b[0], b[3] - b[1]) < F.MIN_FACE:
                continue
            crop = crop_face(fr.rgb, b[:4], None, cfg.crop_scale, cfg.crop_size).rgb
            detector.predict([crop], batch_size=1)
            n += 1
    return n


def ours(video: Path, detector, batch_size: int) -> int:
    from detect.score import score_video

    vs = score_video(video, detector, frames=0, batch_size=batch_size)
    return sum(len(f.faces) for f in vs.timeline)


def quality_section(root: Path, max_faces: int, json_out) -> None:
    """Swap quality on real labelled swaps: the old rule and swap.quality side by side (bench.swap_quality)."""
    from bench.swap_quality import report

    report(root, max_faces, json_out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quality", type=Path, metavar="ROOT",
                    help="the swap-quality section instead: labelled swaps in ROOT (fake*test/, real_test/, photos/)")
    ap.add_argument("--max-faces", type=int, default=16, help="--quality: swapped faces measured per video (0: all)")
    ap.add_argument("--json", type=Path, help="--quality: also write the figures as JSON")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--arch", default="efficientnet_b0")
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=ROOT / "bench_out" / "detect")
    a = ap.parse_args()
    if a.quality is not None:
        quality_section(a.quality, a.max_faces, a.json)
        return
    import torch

    from detect.model import Detector

    p = prepare(a.work, a.frames, a.arch, a.input_size)
    det = Detector(p["detector"])
    det.predict([__import__("numpy").zeros((256, 256, 3), "uint8")] * 2)      # warm-up
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); model {a.arch} @ {a.input_size}; video 640x480, {a.frames} frames")
    rows = {}
    for name, fn in (("baseline: dlib every frame + batch 1", lambda: baseline(p["video"], det)),
                     (f"ours: tracking + batch {a.batch_size}", lambda: ours(p["video"], det, a.batch_size))):
        times, faces = [], 0
        for _ in range(a.repeats):
            t = time.perf_counter()
            faces = fn()
            times.append(time.perf_counter() - t)
        rows[name] = statistics.median(times)
        print(f"{name:40s} {a.frames / rows[name]:7.1f} frames/s  ({faces} faces, median of {a.repeats}: "
              f"{rows[name]:.2f} s; runs {', '.join(f'{t:.2f}' for t in times)})")
    b, o = rows.values()
    print(f"ratio (ours / baseline throughput): {b / o:.2f}x")


if __name__ == "__main__":
    main()
