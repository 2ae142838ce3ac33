"""What happens to a video after it leaves veriswap: metadata stripped, re-encoded, scaled, cut.

Used by the benchmark, the tests and the demo to check the watermark survives (and to show where it
does not). Every transform re-encodes with libx264 (yuv420p); `remux_strip` copies packets only.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional

import av
import cv2
import numpy as np


def remux_strip(src: Path, dst: Path) -> Path:
    """Copy the audio/video packets into a fresh MP4: pixels untouched, every metadata box (the C2PA
    manifest included) gone, as `ffmpeg -i in.mp4 -c copy -map_metadata -1 out.mp4` does."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        streams = [s for s in inp.streams if s.type in ("video", "audio")]
        omap = {s.index: out.add_stream_from_template(s) for s in streams}
        for pkt in inp.demux(streams):
            if pkt.dts is None or not pkt.size:
                continue
            pkt.stream = omap[pkt.stream.index]
            out.mux(pkt)
    return Path(dst)


def transcode(src: Path, dst: Path, crf: int = 23, transform: Optional[Callable[[np.ndarray], np.ndarray]] = None,
              fps: Optional[float] = None, start_s: float = 0.0, duration_s: Optional[float] = None,
              preset: str = "medium") -> Path:
    """Decode `src`, optionally transform each RGB frame, resample to `fps` (drop/repeat by timestamp),
    keep [start_s, start_s + duration_s), and encode H.264 at `crf` (no audio, no metadata)."""
    with av.open(str(src)) as inp:
        vs = inp.streams.video[0]
        src_rate = Fraction(vs.average_rate or 25)
        rate = Fraction(fps).limit_denominator(1001) if fps else src_rate
        with av.open(str(dst), "w", format="mp4") as out:
            os_ = None
            n_out = 0
            for i, frame in enumerate(inp.decode(vs)):
                t = float(frame.time) if frame.time is not None else i / float(src_rate)
                if t < start_s - 1e-6 or (duration_s is not None and t >= start_s + duration_s - 1e-6):
                    continue
                # frames of the new rate whose time falls in this frame's slot get this frame
                t_rel = t - start_s
                reps = int(np.floor((t_rel + 1 / float(src_rate)) * float(rate) + 1e-6)) - n_out
                if reps <= 0:
                    continue
                rgb = frame.to_ndarray(format="rgb24")
                if transform is not None:
                    rgb = np.ascontiguousarray(transform(rgb))
                h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
                rgb = np.ascontiguousarray(rgb[:h, :w])
                if os_ is None:
                    os_ = out.add_stream("libx264", rate=rate)
                    os_.width, os_.height = w, h
                    os_.pix_fmt = "yuv420p"
                    os_.options = {"crf": str(crf), "preset": preset}
                for _ in range(reps):
                    vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                    vf.pts = n_out
                    vf.time_base = 1 / rate
                    n_out += 1
                    for p in os_.encode(vf):
                        out.mux(p)
            if os_ is not None:
                for p in os_.encode(None):
                    out.mux(p)
    return Path(dst)


def scale(f: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda rgb: cv2.resize(rgb, (max(2, round(rgb.shape[1] * f)), max(2, round(rgb.shape[0] * f))),
                                  interpolation=cv2.INTER_AREA)


def center_crop(frac: float) -> Callable[[np.ndarray], np.ndarray]:
    """Cut `frac` of the width and height away (half on each side), no resize back."""
    def f(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        dy, dx = round(h * frac / 2), round(w * frac / 2)
        return rgb[dy:h - dy, dx:w - dx]
    return f


def brightness(gain: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda rgb: np.clip(rgb.astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8)


def hflip(rgb: np.ndarray) -> np.ndarray:
    return rgb[:, ::-1]


def strip_and_reencode(src: Path, dst: Path, crf: int = 28) -> Path:
    """The demo's "after a re-upload" copy: metadata stripped and the pixels re-encoded at `crf`."""
    return transcode(src, dst, crf=crf)
