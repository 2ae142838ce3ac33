"""Convert throughput: the straightforward per-face loop vs `veriswap convert`, same model, video and machine.

baseline: the classic convert loop (as in faceswap's convert: one face at a time): for every frame and
          face, warp the crop out, run the model on that one face, build the landmark-hull mask, match the
          colour, warp the face AND the mask back over the whole frame, blend the whole frame in float32.
ours:     swap.convert.convert: faces batched across frames into one forward pass (`--batch-size`),
          warps and blending over the face's bounding box only; it also writes the per-frame labels and
          manipulation masks (the baseline writes neither). C2PA signing is timed as a separate row.

Both read with PyAV and write H.264 (CRF 18) with PyAV, on the same real-face video (the astronaut moving,
640x480) with the same alignments and the same trained model (trained briefly here: speed does not depend
on how well it swaps). Each variant runs `--repeats` times; medians are printed.

    python bench/convert.py                          # original model, CPU, a few minutes on 2 cores
    python bench/convert.py --model hq --device cuda --frames 500
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def prepare(work: Path, frames: int, model: str, device: str) -> dict:
    """Video, alignments and a briefly trained model, cached in `work`."""
    from swap.extract import extract
    from swap.samples import make_face_video, save_photo
    from swap.train import TrainConfig, train

    work.mkdir(parents=True, exist_ok=True)
    va = work / f"astronaut_{frames}.mp4"
    if not va.exists():
        make_face_video(va, "astronaut", frames=frames)
    vb = work / "grace_60.mp4"
    if not vb.exists():
        make_face_video(vb, "grace_hopper", frames=60)
    ref = save_photo("astronaut", work / "astronaut.png")
    fa, fb = work / f"faces_a_{frames}", work / "faces_b"
    if not (fa / "alignments.json").exists():
        extract([va], fa, ref_face=ref)
    if not (fb / "alignments.json").exists():
        extract([vb], fb)
    mdir = work / f"model_{model}"
    if not (mdir / "config.json").exists():
        train(TrainConfig(faces_a=str(fa), faces_b=str(fb), model_dir=str(mdir), model=model, batch_size=4,
                          iterations=2, save_every=0, preview_every=0, progress=False, identity_check=False,
                          device=device))
    return {"video": va, "alignments": fa / "alignments.json", "model": mdir}


def baseline(video: Path, alignments: Path, model_dir: Path, out: Path, device: str) -> int:
    import cv2
    import numpy as np
    import torch

    from swap import alignments as A
    from swap.color import color_transfer
    from swap.masks import face_mask
    from swap.models import load_model, swap_crop
    from swap.video import VideoWriter, iter_frames, probe

    info = probe(video)
    model, cfg = load_model(model_dir, device=device)
    rec = A.load(alignments).source_for(video)
    cov = float(cfg.get("coverage", 1.0))
    n = 0
    with torch.inference_mode(), VideoWriter(out, info.width, info.height, info.fps, crf=18, audio_from=video) as w:
        for fr in iter_frames(video):
            frame = fr.rgb.astype(np.float32)
            h, wd = frame.shape[:2]
            for f in rec.frames.get(fr.index, []):
                mtx = f.matrix_array()
                crop = cv2.warpAffine(fr.rgb, mtx, (f.size, f.size), borderMode=cv2.BORDER_REFLECT)
                swapped, learned = swap_crop(model, cfg, crop, "a2b")
                pts = f.landmarks_array() @ mtx[:, :2].T + mtx[:, 2]
                mask = face_mask("hull", pts, f.size, learned, int(round(f.size * (1 - cov) / 2)))
                swapped = color_transfer("avg", swapped, crop, mask > 0.5)
                inv = cv2.invertAffineTransform(mtx)
                fw = cv2.warpAffine(swapped, inv, (wd, h), borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
                mw = cv2.warpAffine(mask, inv, (wd, h))[..., None]
                frame = frame * (1 - mw) + fw * mw
            w.write(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
            n += 1
    return n


def ours(video: Path, alignments: Path, model_dir: Path, out: Path, device: str, batch: int, sign: bool):
    from swap.convert import ConvertSettings, convert

    return convert(video, model_dir, out, alignments, ConvertSettings(device=device, batch_size=batch, sign=sign))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--model", default="original", choices=["original", "hq"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=ROOT / "bench_out" / "convert")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    os.environ.setdefault("VERISWAP_HOME", str(a.work / "home"))
    p = prepare(a.work, a.frames, a.model, a.device)
    out = a.work / "out"
    shutil.rmtree(out, ignore_errors=True)
    times = {"baseline": [], "ours": [], "ours + C2PA sign": []}
    for _ in range(a.repeats):
        t = time.perf_counter()
        n = baseline(p["video"], p["alignments"], p["model"], out / "base.mp4", a.device)
        times["baseline"].append(time.perf_counter() - t)
        t = time.perf_counter()
        s = ours(p["video"], p["alignments"], p["model"], out / "ours.mp4", a.device, a.batch_size, False)
        times["ours"].append(time.perf_counter() - t)
        t = time.perf_counter()
        ours(p["video"], p["alignments"], p["model"], out / "signed.mp4", a.device, a.batch_size, True)
        times["ours + C2PA sign"].append(time.perf_counter() - t)
    assert s.frames == n and s.faces_swapped > 0
    dev = torch.cuda.get_device_name() if a.device.startswith("cuda") else f"{platform.machine()} CPU, {os.cpu_count()} cores"
    print(f"veriswap convert benchmark: {a.frames} frames 640x480, model {a.model}, {s.faces_swapped} faces, "
          f"batch {a.batch_size}, median of {a.repeats}")
    print(f"machine: {dev}, torch {torch.__version__}, Python {platform.python_version()}\n")
    base = statistics.median(times["baseline"])
    print(f"{'variant':18s} {'seconds':>8s} {'fps':>7s} {'ratio':>6s}")
    for k, v in times.items():
        m = statistics.median(v)
        print(f"{k:18s} {m:8.2f} {n / m:7.2f} {base / m:5.2f}x")
    print(f"\nbaseline {n / base:.2f} fps; ours {n / statistics.median(times['ours']):.2f} fps: "
          f"{base / statistics.median(times['ours']):.2f}x")


if __name__ == "__main__":
    main()
