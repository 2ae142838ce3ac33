"""Training throughput: the classic pipeline vs `veriswap train`'s loop, same model, batch and machine.

baseline: torch DataLoader per identity, its worker processes doing the faceswap-style augmentation per
          sample with OpenCV/numpy on the CPU (L*a*b jitter, warpAffine rotate/zoom/shift/flip, 5x5 random
          warp via remap), fp32, the encoder run separately on A and B, torch's default Adam. Workers: all CPUs
          but the main process's, split between the two loaders (1 each on a 2-CPU box; --workers to set).
ours:     swap.train.Trainer.train_step_async: uint8 faces resident on the device, batched torch augmentation
          (grid_sample), one encoder pass over A+B, fused Adam, autocast bf16/fp16 + channels_last on CUDA,
          losses left on the device (no per-step host read); --compile [MODE] adds torch.compile.

Both use the same loss (masked SSIM + L1 with eye/mouth weights) on the same real faces (astronaut vs
Grace Hopper). Each variant runs in a fresh process; peak memory is the max RSS of the process and its
workers (CPU) or torch's peak allocated memory (CUDA).

    python bench/train.py                       # original + hq, a few minutes on 2 CPU cores
    python bench/train.py --models hq --iters 20 --device cuda
    python bench/train.py --convergence 300     # does ours' precision cost quality? fp32 vs auto, same seed

--convergence N trains each model N iterations twice from the same seed, ours with --precision fp32 and
with ours' precision (auto: bf16 on CPUs with AMX/AVX512-BF16 and on CUDA), each in a fresh process, and
prints the wall time, the training loss at the end and the loss of the final weights on fixed held-out
augmented batches evaluated in fp32 (the same batches for both), plus the time each run took to reach the
fp32 run's final training loss.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "4090": 165e12}


# ---- baseline: classic per-sample OpenCV augmentation in DataLoader workers -----------------------

class ClassicFaces:
    def __init__(self, images, masks, size, n):
        self.images, self.masks, self.size, self.n = images, masks, size, n   # numpy N,S,S,3 / N,S,S,3

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        import cv2
        import numpy as np
        rng = np.random.default_rng((os.getpid() * 7919 + i) % 2**32)
        j = rng.integers(len(self.images))
        img, msk = self.images[j], self.masks[j]
        s = img.shape[0]
        # L*a*b jitter
        lab = cv2.cvtColor(img.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
        r = rng.uniform(-1, 1, 3)
        lab[..., 0] = np.clip(lab[..., 0] * (1 + r[0] * 0.3), 0, 100)
        lab[..., 1:] += r[1:] * 0.08 * 127
        img = np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), 0, 1)
        # affine rotate/zoom/shift + flip
        m = cv2.getRotationMatrix2D((s / 2, s / 2), rng.uniform(-10, 10), rng.uniform(0.95, 1.05))
        m[:, 2] += rng.uniform(-0.05, 0.05, 2) * s
        img = cv2.warpAffine(img, m, (s, s), borderMode=cv2.BORDER_REFLECT)
        msk = cv2.warpAffine(msk, m, (s, s), borderMode=cv2.BORDER_REFLECT)
        if rng.random() < 0.5:
            img, msk = img[:, ::-1], msk[:, ::-1]
        # 5x5 random warp (faceswap's random_warp)
        grid = np.linspace(0, s - 1, 5)
        mx = np.broadcast_to(grid, (5, 5)).astype(np.float32) + rng.normal(0, s * 5 / 256, (5, 5)).astype(np.float32)
        my = np.broadcast_to(grid, (5, 5)).T.astype(np.float32) + rng.normal(0, s * 5 / 256, (5, 5)).astype(np.float32)
        mx = cv2.resize(mx, (s, s), interpolation=cv2.INTER_CUBIC)
        my = cv2.resize(my, (s, s), interpolation=cv2.INTER_CUBIC)
        warped = cv2.remap(np.ascontiguousarray(img), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        t = lambda a: np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32)  # noqa: E731
        return t(warped), t(img), t(msk.astype(np.float32) / 255)


def _one_thread_per_worker(_: int) -> None:
    # many workers each with a full OpenCV/torch thread pool would oversubscribe the CPUs and slow the
    # baseline down for nothing: one thread per worker process, as DataLoader pipelines are usually set up
    import cv2
    import torch
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def run_variant(variant, model_name, model_opts, batch, iters, warmup, device, faces, threads, precision="auto",
                compile_mode=None, workers=1):
    import torch

    from swap.train import TrainConfig, Trainer
    torch.set_num_threads(threads)
    td = tempfile.mkdtemp(prefix="bench_train_")
    cfg = TrainConfig(faces_a=str(faces[0]), faces_b=str(faces[1]), model_dir=td, model=model_name,
                      model_options=model_opts, batch_size=batch, device=device, progress=False,
                      identity_check=False, save_every=0, preview_every=0, precision=precision,
                      compile_mode=compile_mode if variant == "ours" else None)
    if variant == "baseline":
        cfg.precision, cfg.channels_last = "fp32", False
    tr = Trainer(cfg)
    dev = tr.device
    flops = None
    if variant == "ours":
        step = tr.train_step_async   # as `veriswap train` runs: losses stay on the device between reads
    else:
        from torch.utils.data import DataLoader

        from swap.train.loss import reconstruction_loss
        opt = torch.optim.Adam(tr.model.parameters(), lr=tr.lr, betas=(0.5, 0.999))

        def loader(fs):
            imgs = fs.images.cpu().permute(0, 2, 3, 1).numpy()
            msks = fs.masks.cpu().permute(0, 2, 3, 1).numpy()
            ds = ClassicFaces(imgs, msks, tr.res, batch * (iters + warmup + 4))
            return iter(DataLoader(ds, batch_size=batch, num_workers=workers, persistent_workers=True,
                                   worker_init_fn=_one_thread_per_worker,
                                   pin_memory=dev.type == "cuda", prefetch_factor=2))
        la_it, lb_it = loader(tr.a), loader(tr.b)
        model = tr.model

        def step():
            out = {}
            loss = 0
            for side, it in (("a", la_it), ("b", lb_it)):
                w, t, m = (x.to(dev, non_blocking=True) for x in next(it))
                face, mask = model(w, decoder=side)
                l = reconstruction_loss(face, t, m, cfg.loss, mask)
                loss = loss + l["loss"]
                out[f"loss_{side}"] = float(l["face"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return out

    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        if variant == "ours":
            from torch.utils.flop_counter import FlopCounterMode
            compiled, tr.step_fn = tr.step_fn, tr._step   # count the eager graph: same math, visible ops
            with FlopCounterMode(display=False) as fc:
                step()
            tr.step_fn = compiled
            flops = fc.get_total_flops()
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    sync()
    dt = time.perf_counter() - t0
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    res = {"variant": variant, "model": model_name, "device": str(dev), "batch": batch, "iters": iters,
           "workers": workers if variant == "baseline" else 0, "compile_mode": compile_mode if variant == "ours" else None,
           "precision": str(tr.amp_dtype or "fp32").replace("torch.", "") if variant == "ours" else "fp32",
           "channels_last": bool(tr.channels_last) if variant == "ours" else False,
           "seconds": dt, "examples_per_s": iters * batch * 2 / dt, "peak_mib": peak}
    if flops:
        name = torch.cuda.get_device_name(dev)
        peak_fl = next((v for k, v in PEAK_BF16.items() if k in name), None)
        res["gpu"] = name
        res["tflops"] = flops * iters / dt / 1e12
        res["mfu_pct"] = 100 * flops * iters / dt / peak_fl if peak_fl else None
    import shutil
    shutil.rmtree(td, ignore_errors=True)
    return res


def run_convergence(model_name, model_opts, batch, iters, device, faces, threads, precision, seed=0):
    """Train `iters` iterations from `seed`; the (elapsed, loss) curve and an fp32 held-out evaluation."""
    import numpy as np
    import torch

    from swap.train import TrainConfig, Trainer
    from swap.train.loss import reconstruction_loss
    torch.set_num_threads(threads)
    td = tempfile.mkdtemp(prefix="bench_conv_")
    cfg = TrainConfig(faces_a=str(faces[0]), faces_b=str(faces[1]), model_dir=td, model=model_name,
                      model_options=model_opts, batch_size=batch, device=device, progress=False, seed=seed,
                      identity_check=False, save_every=0, preview_every=0, precision=precision)
    tr = Trainer(cfg)
    curve = []
    t0 = time.perf_counter()
    for _ in range(iters):
        row = tr.train_step()
        curve.append((time.perf_counter() - t0, row["loss_a"] + row["loss_b"]))
    wall = time.perf_counter() - t0
    # held-out: augmented batches from a generator seeded apart from training, fp32, eval mode
    model = tr.model.to(memory_format=torch.contiguous_format).eval()
    gen_train, tr.gen = tr.gen, torch.Generator(device=tr.gen.device).manual_seed(12345)
    evals = []
    with torch.no_grad():
        for _ in range(4):
            total = 0.0
            for fs, other, side in ((tr.a, tr.b, "a"), (tr.b, tr.a, "b")):
                w, t, m = tr._sample(fs, other, side)
                face, mask = model(w.float(), decoder=side)
                total += float(reconstruction_loss(face.float(), t, m, cfg.loss,
                                                   None if mask is None else mask.float())["face"])
            evals.append(total)
    tr.gen = gen_train
    import shutil
    shutil.rmtree(td, ignore_errors=True)
    return {"model": model_name, "seed": seed, "precision": str(tr.amp_dtype or "fp32").replace("torch.", ""),
            "channels_last": bool(tr.channels_last), "iters": iters, "seconds": wall,
            "curve": curve, "heldout": float(np.mean(evals))}


def _smooth(curve, k=15):
    """Running median of the training loss (a single batch's loss is noisy)."""
    import numpy as np
    losses = np.array([l for _, l in curve])
    return [float(np.median(losses[max(0, i - k + 1):i + 1])) for i in range(len(losses))]


def report_convergence(results, tol=0.01):
    print(f"{'model':10s} {'precision':24s} {'seconds':>8s} {'train loss':>10s} {'held-out':>9s} "
          f"{'s to fp32 final+1%':>18s} {'speed-up':>8s}")
    for m, runs in results.items():
        ref, ours = runs[0], runs[1]
        smooth = {id(r): _smooth(r["curve"]) for r in runs}
        sm_ref = smooth[id(ref)]
        target = sm_ref[-1] * (1 + tol)
        for r in runs:
            sm = smooth[id(r)]
            hit = next((r["curve"][i][0] for i, v in enumerate(sm) if v <= target), None)
            r["to_target"] = hit
            prec = r["precision"] + (", channels_last" if r["channels_last"] else "") + \
                (f" (seed {r['seed']})" if r.get("seed") else "")
            reach = f"{hit:.1f}" if hit is not None else "not reached"
            speedup = "1.00x" if r is ref else (f"{ref['to_target'] / hit:.2f}x" if hit and ref["to_target"] else "-")
            print(f"{m:10s} {prec:24s} {r['seconds']:8.1f} {sm[-1]:10.4f} {r['heldout']:9.4f} "
                  f"{reach:>18s} {speedup:>8s}")
        # the same wall-clock budget for both: fp32's loss when ours finished
        at = next((sm_ref[i] for i, (t, _) in enumerate(ref["curve"]) if t >= ours["seconds"]), sm_ref[-1])
        print(f"{'':10s} at ours' {ours['seconds']:.0f} s fp32 stood at train loss {at:.4f} "
              f"(ours {smooth[id(ours)][-1]:.4f})")
    print("(train loss: running median of the last 15 steps, face A + face B; held-out: the final weights on "
          "4 fixed augmented batches per identity, fp32; s to fp32 final+1%: wall seconds until the train loss "
          "is within 1% of the fp32 run's final one; speed-up: fp32's seconds to that over ours')")


def _child(args, label):
    """Run this script in a fresh process with `args`; its RESULT line as a dict (exit with its output on failure)."""
    out = subprocess.run([sys.executable, __file__] + args, capture_output=True, text=True, cwd=ROOT)
    lines = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
    if out.returncode or not lines:
        sys.exit(f"{label} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="original,hq")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--iters", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--hq-resolution", type=int, default=128)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="alternate baseline/ours this many times; report the median")
    ap.add_argument("--precision", default="auto", help="ours' --precision (auto: bf16 on CUDA and on CPUs with AMX/AVX512-BF16)")
    ap.add_argument("--compile", nargs="?", const="default", metavar="MODE",
                    help="ours with torch.compile, optionally a mode: default, reduce-overhead (CUDA graphs), ...")
    ap.add_argument("--workers", type=int, help="baseline DataLoader workers per identity (default: the CPUs "
                    "left after the main process, split between the two loaders; 1 on a 2-CPU box)")
    ap.add_argument("--make-faces", metavar="DIR", help="write the bench's aligned faces (needs dlib) to DIR for "
                    "VERISWAP_FACES_CACHE on a machine without dlib's models, then exit")
    ap.add_argument("--convergence", type=int, metavar="N", help="train N iterations fp32 vs ours' precision; "
                    "compare loss and time (quality check, not the speed benchmark)")
    ap.add_argument("--spread", action="store_true", help="--convergence: also train fp32 from another seed, "
                    "to show how far two fp32 runs land apart")
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--json-out", metavar="FILE", help="also write the raw results (loss curves) as JSON")
    ap.add_argument("--_variant", help=argparse.SUPPRESS)
    ap.add_argument("--_converge", help=argparse.SUPPRESS)
    ap.add_argument("--_faces", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._converge or a._variant:   # a child process: one model, one variant
        faces, m = a._faces.split(os.pathsep), a.models
        opts = {"resolution": a.hq_resolution} if m == "hq" else {}
        res = (run_convergence(m, opts, a.batch, a.convergence, a.device, faces, a.threads, a._converge, a.seed)
               if a._converge else run_variant(a._variant, m, opts, a.batch, a.iters, a.warmup, a.device, faces,
                                               a.threads, a.precision, a.compile, a.workers or 1))
        print("RESULT " + json.dumps(res), flush=True)
        return
    from train_fixtures import make_faces_dir
    if a.make_faces:
        for photo in ("astronaut", "grace_hopper"):
            for size in (128, 256):   # 128: the tests' faces, 256: this bench's
                print(make_faces_dir(Path(a.make_faces) / f"{photo}_{size}", photo, size))
        return
    fd = Path(tempfile.mkdtemp(prefix="bench_faces_"))
    faces = [str(make_faces_dir(fd / "astronaut", "astronaut", 256)),
             str(make_faces_dir(fd / "grace_hopper", "grace_hopper", 256))]
    import platform
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor()) \
        if os.path.exists("/proc/cpuinfo") else platform.processor()
    from swap.device import cpu_bf16_isa
    isa = cpu_bf16_isa()
    print(f"machine: {cpu}, {os.cpu_count()} CPUs (bf16 unit: {isa or 'none, emulated'}), "
          f"torch threads {a.threads}, device {a.device}")

    def child_args(m):   # what every child of either mode needs
        return ["--_faces", os.pathsep.join(faces), "--models", m, "--batch", str(a.batch),
                "--hq-resolution", str(a.hq_resolution), "--device", a.device, "--threads", str(a.threads)]

    def label(m):
        return f"{m}@{a.hq_resolution}" if m == "hq" else f"{m}@64"

    if a.convergence:
        print(f"convergence: {a.convergence} iterations, batch {a.batch} per identity, seed 0, fp32 vs {a.precision}")
        conv = {}
        for m in a.models.split(","):
            runs = []
            for prec, seed in [("fp32", 0), (a.precision, 0)] + [("fp32", 1)] * a.spread:
                runs.append(_child(["--_converge", prec, "--seed", str(seed), "--convergence", str(a.convergence)]
                                   + child_args(m), f"convergence {m} {prec}"))
            conv[label(m)] = runs
        if a.json_out:
            Path(a.json_out).write_text(json.dumps(conv))
        report_convergence(conv)
        return
    workers = a.workers or max(1, ((os.cpu_count() or 2) - 2) // 2)
    print(f"batch {a.batch} per identity, {a.iters} timed iterations after {a.warmup} warm-up; "
          f"baseline: {workers} DataLoader worker(s) per identity" + (f"; ours: torch.compile mode {a.compile}"
                                                                      if a.compile else ""))
    results = {}
    for m in a.models.split(","):
        for rep in range(a.repeats):
            for v in ("baseline", "ours"):
                args = ["--_variant", v, "--iters", str(a.iters), "--warmup", str(a.warmup), "--precision", a.precision,
                        "--workers", str(workers)] + child_args(m) + (["--compile", a.compile] if a.compile else [])
                r = _child(args, f"{v} {m}")
                results.setdefault((m, v), []).append(r)
                # each run as it ends: a run cut short by a time limit still leaves these
                print(f"  run {rep + 1}/{a.repeats} {m} {v}: {r['examples_per_s']:.2f} ex/s, {r['peak_mib']:.0f} MiB"
                      + (f", MFU {r['mfu_pct']:.1f}%" if r.get("mfu_pct") else ""), flush=True)
    def median(runs):   # the run with the median examples/s (keeps its peak memory and flops with it)
        return sorted(runs, key=lambda r: r["examples_per_s"])[len(runs) // 2]

    print(f"median of {a.repeats} alternating runs per variant")
    print(f"{'model':10s} {'variant':9s} {'examples/s':>11s} {'peak MiB':>9s} {'ratio':>6s}  extra")
    for m in a.models.split(","):
        b, o = median(results[(m, "baseline")]), median(results[(m, "ours")])
        res = label(m)
        print(f"{res:10s} {'baseline':9s} {b['examples_per_s']:11.2f} {b['peak_mib']:9.0f} {'1.00':>6s}")
        extra = o["precision"] + (", channels_last" if o["channels_last"] else "") + \
            (f", torch.compile {o['compile_mode']}" if o.get("compile_mode") else "")
        if o.get("tflops") is not None:
            extra += f", {o['tflops']:.1f} TFLOP/s" + (f", MFU {o['mfu_pct']:.1f}% of {o['gpu']} bf16 peak"
                                                     if o.get("mfu_pct") else "")
        print(f"{res:10s} {'ours':9s} {o['examples_per_s']:11.2f} {o['peak_mib']:9.0f} "
              f"{o['examples_per_s'] / b['examples_per_s']:6.2f}  {extra}")


if __name__ == "__main__":
    main()
