"""Benchmark `veriswap check` against its baselines, measured in the same run (medians of --repeats).

1. C2PA-only checks of a folder of signed photos (JPEG, PNG) and signed videos (MP4):
   baseline = c2pa-python's Reader alone on the same files (one process, a Reader per file with the same
   trust anchor, manifest JSON + validation state), vs `veriswap check`'s library path (check_paths: walk,
   verify, verdict) with --jobs 1 (like for like) and with all cores (the default), and the `veriswap check`
   command itself (a fresh process, import time included). Target: >= 0.8x the Reader's throughput.
2. A full check of one 720p clip (C2PA + footage tags + detector) vs the sum of the three parts run
   separately (provenance.c2pa_verify.verify_file, provenance.tags.check_video, detect.score.score_video),
   the detector loaded once beforehand in both. Target: <= 1.0x. None of the parts decodes twice (C2PA
   hashes bytes, the tag check hashes coded packets, only the detector decodes), so what is shared is the
   wall clock: check runs C2PA and tags beside the detector.

3. `--batch N`: the command on a folder of N photos and short clips with --jobs, killed once and resumed
   (bench/check_batch.py).

Run: .venv/bin/python bench/check.py [--photos 60 --videos 6 --repeats 5 --clip-seconds 4 --frames 32]
     .venv/bin/python bench/check.py --batch 1000 --jobs 2
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def median_time(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def build_folder(d: Path, photos: int, videos: int, ident) -> list:
    import cv2

    from provenance.c2pa_sign import sign_file
    from swap.samples import load_photo, make_face_video

    raw = d / "raw"
    out = d / "signed"
    raw.mkdir(parents=True, exist_ok=True)
    files = []
    imgs = [load_photo("astronaut"), load_photo("grace_hopper")]
    for i in range(photos):
        img = imgs[i % 2]
        k = 3.0 + 3.0 * ((i * 7) % 10) / 10          # 1.5k-3k px like camera photos, sizes vary
        img = cv2.resize(img, (int(img.shape[1] * k), int(img.shape[0] * k)), interpolation=cv2.INTER_CUBIC)
        ext = ".png" if i % 5 == 4 else ".jpg"
        p = raw / f"photo_{i:04d}{ext}"
        cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        files.append(sign_file(p, out / p.name, ident).out)
    for i in range(videos):
        p = make_face_video(raw / f"clip_{i:03d}.mp4", "astronaut" if i % 2 else "grace_hopper", frames=75,
                            size=(640, 480))
        files.append(sign_file(p, out / p.name, ident).out)
    return files


def reader_alone(files, anchors_pem: str) -> None:
    import c2pa

    from provenance.c2pa_sign import SIGNABLE

    for p in files:
        ctx = c2pa.Context.from_dict({"trust": {"trust_anchors": anchors_pem}, "verify": {"verify_trust": True}})
        try:
            with open(p, "rb") as f, c2pa.Reader(SIGNABLE.get(p.suffix.lower()), f, context=ctx) as r:
                json.loads(r.json())
                r.get_validation_state()
        finally:
            ctx.close()


def make_detector(out: Path, arch: str, size: int) -> Path:
    import torch

    from detect.model import DetectorConfig, create_model, normalization, save_weights

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    m = create_model(arch)
    mean, std = normalization(m)
    DetectorConfig(arch=arch, input_size=size, mean=mean, std=std, threshold=0.5, crop_size=size).save(out)
    save_weights(m, out / "model.safetensors")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=60)
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--clip-seconds", type=float, default=4.0)
    ap.add_argument("--frames", type=int, default=32, help="frames the detector samples")
    ap.add_argument("--arch", default="efficientnet_b0")
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--work", type=Path, default=None, help="keep the material here (default: a temp folder)")
    ap.add_argument("--skip-folder", action="store_true")
    ap.add_argument("--skip-clip", action="store_true")
    ap.add_argument("--batch", type=int, default=0, metavar="N",
                    help="only the batch run (bench/check_batch.py): N photos and clips, killed once, resumed")
    ap.add_argument("--jobs", type=int, default=2, help="--jobs of the batch run")
    ap.add_argument("--kill-at", type=float, default=0.4, help="kill the batch run after this share of files")
    ap.add_argument("--batch-scale", default="2,5", help="batch photos: the sample photos scaled LO,HI times "
                                                         "(2,5: 1k-3k px like camera photos)")
    a = ap.parse_args()
    if a.batch:
        import check_batch

        work = a.work or Path(tempfile.mkdtemp(prefix="vs-bench-batch-"))
        work.mkdir(parents=True, exist_ok=True)
        try:
            check_batch.main(a.batch, a.jobs, a.kill_at, work, tuple(map(float, a.batch_scale.split(","))))
        finally:
            if a.work is None:
                shutil.rmtree(work, ignore_errors=True)
        return

    from provenance.keys import generate_identity
    from veriswap.check import CheckOptions, check_file, check_paths

    work = a.work or Path(tempfile.mkdtemp(prefix="vs-bench-check-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        ident = generate_identity(work / "keys", name="bench", overwrite=True)
        root = str(ident.key_dir / "root.pem")
        anchors_pem = Path(root).read_text()
        cores = os.cpu_count() or 1
        print(f"machine: {cores} cores; repeats {a.repeats} (medians); load average {os.getloadavg()[0]:.1f}")
        if not a.skip_folder:
            t0 = time.perf_counter()
            files = build_folder(work / "folder", a.photos, a.videos, ident)
            mb = sum(p.stat().st_size for p in files) / 2 ** 20
            print(f"\n[1] C2PA-only: {a.photos} signed photos + {a.videos} signed 3 s 640x480 videos, "
                  f"{mb:.1f} MB (built in {time.perf_counter() - t0:.0f} s)")
            folder = work / "folder" / "signed"
            opts = CheckOptions(trust_anchors=[root])
            recs, _ = check_paths([folder], opts, jobs=1)
            assert all(r["verdict"]["exit_code"] == 0 for r in recs), [r["verdict"] for r in recs if r["verdict"]["exit_code"]]
            reader_alone(files, anchors_pem)                                   # warm caches for both
            fns = {"base": lambda: reader_alone(files, anchors_pem),
                   "ours1": lambda: check_paths([folder], opts, jobs=1),
                   "oursn": lambda: check_paths([folder], opts, jobs=cores)}
            runs = {k: [] for k in fns}
            for _ in range(a.repeats):                  # interleaved rounds, as in [2]
                for k, f in fns.items():
                    t0 = time.perf_counter()
                    f()
                    runs[k].append(time.perf_counter() - t0)
            base, ours1, oursn = (statistics.median(runs[k]) for k in ("base", "ours1", "oursn"))
            from veriswap.check.batch import _pool_context

            start = _pool_context(False).get_start_method()
            # the console entry point, run from the repository (what `veriswap check ...` runs)
            cmd = [sys.executable, "-c", "from veriswap.cli import main; main()", "check", str(folder),
                   "--trust-anchor", root, "--no-progress", "--fresh", "--json", "--results", str(work / "results.jsonl")]

            def cli() -> None:
                r = subprocess.run(cmd, capture_output=True, cwd=str(ROOT))
                assert r.returncode == 0, r.stderr.decode()[-500:]
            cli()
            cli_t = median_time(cli, a.repeats)
            n = len(files)
            print(f"  baseline  c2pa Reader alone, 1 process         {base:7.3f} s  {n / base:7.1f} files/s")
            for name, t in ((f"veriswap check library, --jobs 1         ", ours1),
                            (f"veriswap check library, --jobs {cores} ({start})", oursn),
                            (f"`veriswap check` command (new process)  ", cli_t)):
                print(f"  ours      {name} {t:7.3f} s  {n / t:7.1f} files/s   throughput ratio {base / t:5.2f}x")
            print("  target: >= 0.8x the Reader's throughput")
        if not a.skip_clip:
            from detect.score import score_video
            from provenance.c2pa_sign import sign_file
            from provenance.c2pa_verify import verify_file
            from provenance.tags import check_video, tag_video
            from swap.samples import make_face_video
            from veriswap.check.evidence import load_detector

            fps = 25
            n = int(a.clip_seconds * fps)
            raw = make_face_video(work / "clip" / "raw720.mp4", "astronaut", frames=n, size=(1280, 720), fps=fps)
            clip = sign_file(raw, work / "clip" / "clip720.mp4", ident).out
            key = ident.key_dir / "tag.key"
            tags = tag_video(clip, key)
            det_dir = make_detector(work / "det", a.arch, a.input_size)
            det = load_detector(str(det_dir), a.device)
            print(f"\n[2] full check of one 1280x720 clip, {n} frames ({clip.stat().st_size / 2 ** 20:.1f} MB): C2PA + "
                  f"tags + detector ({a.arch} at {a.input_size} px, {a.frames} sampled frames, {a.device})")
            opts = CheckOptions(trust_anchors=[root], tag_key=str(key), detector=str(det_dir), frames=a.frames,
                                device=a.device)
            rec = check_file(clip, opts)
            assert rec["c2pa"]["state"] == "trusted" and rec["tags"]["ok"] and rec["detector"]["status"] == "checked", rec["verdict"]
            parts = {
                "C2PA verify": lambda: verify_file(clip, [root]),
                "tag check": lambda: check_video(clip, tags, key),
                "detector score": lambda: score_video(clip, det, frames=a.frames, truth=False),
            }
            # interleaved rounds (parts, then ours), so load from other processes hits both alike
            runs = {k: [] for k in [*parts, "sum", "ours"]}
            for _ in range(a.repeats):
                s = 0.0
                for k, f in parts.items():
                    t0 = time.perf_counter()
                    f()
                    runs[k].append(time.perf_counter() - t0)
                    s += runs[k][-1]
                runs["sum"].append(s)
                t0 = time.perf_counter()
                check_file(clip, opts)
                runs["ours"].append(time.perf_counter() - t0)
            med = {k: statistics.median(v) for k, v in runs.items()}
            for k in parts:
                print(f"  part      {k:<40} {med[k]:7.3f} s")
            print(f"  baseline  sum of the parts run separately       {med['sum']:7.3f} s")
            print(f"  ours      veriswap check (one call)             {med['ours']:7.3f} s   ratio "
                  f"{med['ours'] / med['sum']:5.2f}x (target <= 1.0x); per-round ratios "
                  + " ".join(f"{o / b:.2f}" for o, b in zip(runs["ours"], runs["sum"])))
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
