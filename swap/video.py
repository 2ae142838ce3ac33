"""Video and image I/O on PyAV: frames with timestamps in, H.264 MP4 with the source audio out.

OpenCV's writer has no H.264 and drops audio, so everything goes through PyAV (FFmpeg).
Readers stream: one decoded frame in memory at a time.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence

import cv2
import numpy as np

from provenance.fsutil import atomic_write_bytes, new_temp, remove_stale_temps

from .errors import InputError


class _LazyAV:
    """PyAV, imported on first use: training from faces folders reads images only, and a GPU box that
    trains may have no PyAV."""

    def __getattr__(self, name: str):
        import av as real
        globals()["av"] = real
        return getattr(real, name)


av = _LazyAV()

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_EXTS = {".mp4", ".mov", ".avi", ".mkv", ".m4v", ".webm"}


@dataclass
class Frame:
    index: int          # 0-based decode order index within the source
    time: float         # presentation time in seconds (index / fps for images)
    rgb: np.ndarray     # HxWx3 uint8, RGB


@dataclass
class VideoInfo:
    path: str
    width: int
    height: int
    fps: float
    frames: int         # container's count, or a decode count when the container has none
    duration: float
    has_audio: bool
    is_image: bool = False


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def list_images(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image(p))


def read_image(path: Path) -> np.ndarray:
    """Read an image file as RGB uint8 (clear error for unreadable files)."""
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise InputError(f"cannot read image: {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def write_image_atomic(path: Path, rgb: np.ndarray, fsync: bool = True) -> None:
    """RGB (HxWx3) or grey (HxW) uint8 image, written atomically in the format of the file's suffix."""
    ok, buf = cv2.imencode(path.suffix or ".png", rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError(f"cannot encode image: {path}")
    atomic_write_bytes(path, buf.tobytes(), fsync=fsync)


def _open(path: Path):
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.is_dir():
        raise InputError(f"expected a video file, got a folder: {path}")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise InputError(f"not a readable video: {path} ({type(e).__name__})") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"no video stream in: {path}")
    return container


def probe(path: Path) -> VideoInfo:
    """Basic facts about a video, image or image folder."""
    path = Path(path)
    if path.is_dir():
        imgs = list_images(path)
        if not imgs:
            raise InputError(f"no images in folder: {path}")
        h, w = read_image(imgs[0]).shape[:2]
        return VideoInfo(str(path), w, h, 25.0, len(imgs), len(imgs) / 25.0, False, True)
    if is_image(path):
        if not path.exists():
            raise InputError(f"no such file: {path}")
        h, w = read_image(path).shape[:2]
        return VideoInfo(str(path), w, h, 1.0, 1, 0.0, False, True)
    with _open(path) as c:
        vs = c.streams.video[0]
        fps = float(vs.average_rate or vs.guessed_rate or 25)
        dur = float(vs.duration * vs.time_base) if vs.duration else (c.duration or 0) / 1e6
        n = vs.frames or int(round(dur * fps))
        return VideoInfo(str(path), vs.codec_context.width, vs.codec_context.height, fps, n, dur,
                         bool(c.streams.audio))


def iter_frames(path: Path, every: int = 1, start: int = 0,
                select: Optional[Callable[[int], bool]] = None,
                stop: Optional[int] = None) -> Iterator[Frame]:
    """Yield every `every`-th frame (index >= start) of a video, image, or image folder.

    `select(index)` picks a subset (frames not selected are decoded but never converted to RGB,
    which is most of the cost of skipping); reading ends before frame index `stop`.

    A truncated or corrupt video yields the frames that decode and then raises InputError,
    so callers keep what they already wrote.
    """
    path = Path(path)
    every = max(1, int(every))
    if path.is_dir():
        for i, p in enumerate(list_images(path)):
            if stop is not None and i >= stop:
                break
            if i >= start and i % every == 0 and (select is None or select(i)):
                yield Frame(i, i / 25.0, read_image(p))
        return
    if is_image(path):
        if start == 0 and (select is None or select(0)):
            yield Frame(0, 0.0, read_image(path))
        return
    container = _open(path)
    try:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        fps = float(vs.average_rate or vs.guessed_rate or 25)
        i = -1
        try:
            for frame in container.decode(vs):
                i += 1
                if stop is not None and i >= stop:
                    break
                if i < start or i % every or (select is not None and not select(i)):
                    continue
                t = float(frame.pts * vs.time_base) if frame.pts is not None else i / fps
                yield Frame(i, t, frame.to_ndarray(format="rgb24"))
        except av.error.FFmpegError as e:
            raise InputError(f"video stream is corrupt or truncated after frame {i}: {path} ({e})") from None
        if i < 0:
            raise InputError(f"no decodable frames in: {path}")
    finally:
        container.close()


class VideoWriter:
    """H.264 MP4 writer with a chosen CRF and the source's audio stream remuxed (no re-encode).

    Writes to a temp file beside `out` and moves it into place on `close()`, so an interrupted
    convert never leaves a broken OUT.mp4. Use as a context manager.
    """

    def __init__(self, out: Path, width: int, height: int, fps: float | Fraction,
                 crf: int = 18, audio_from: Optional[Path] = None, preset: str = "medium",
                 pix_fmt: str = "yuv420p"):
        self.out = Path(out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = new_temp(self.out.parent, f".{self.out.stem}.", self.out.suffix or ".mp4")
        self._c = av.open(self._tmp, mode="w", format="mp4")
        rate = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
        self._rate = rate
        self._vs = self._c.add_stream("libx264", rate=rate)
        self._vs.width, self._vs.height = int(width) // 2 * 2, int(height) // 2 * 2
        self._vs.pix_fmt = pix_fmt
        self._vs.options = {"crf": str(crf), "preset": preset}
        self._audio_src = None
        if audio_from is not None and not is_image(Path(audio_from)) and Path(audio_from).is_file():
            src = av.open(str(audio_from))
            if src.streams.audio:
                self._audio_src = src
                self._as_in = src.streams.audio[0]
                self._as_out = self._c.add_stream_from_template(self._as_in)
            else:
                src.close()
        self._n = 0
        self._closed = False

    def write(self, rgb: np.ndarray) -> None:
        h, w = self._vs.height, self._vs.width
        if rgb.shape[0] != h or rgb.shape[1] != w:
            rgb = np.ascontiguousarray(rgb[:h, :w])
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self._n
        frame.time_base = 1 / self._rate
        self._n += 1
        for pkt in self._vs.encode(frame):
            self._c.mux(pkt)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for pkt in self._vs.encode(None):
            self._c.mux(pkt)
        if self._audio_src is not None:
            for pkt in self._audio_src.demux(self._as_in):
                if pkt.dts is None:
                    continue
                pkt.stream = self._as_out
                self._c.mux(pkt)
            self._audio_src.close()
        self._c.close()
        os.replace(self._tmp, self.out)

    def abort(self) -> None:
        self._closed = True
        try:
            self._c.close()
        finally:
            if self._audio_src is not None:
                self._audio_src.close()
            if os.path.exists(self._tmp):
                os.unlink(self._tmp)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def reencode(src: Path, dst: Path, crf: int) -> int:
    """Re-encode a video's frames with H.264 at `crf` (no audio), frame for frame, so frame indices and
    labels still apply: the compressed copies FaceForensics++ studies (c23, c40). Returns the frame count."""
    info = probe(src)
    n = 0
    with VideoWriter(dst, info.width, info.height, info.fps, crf=crf) as w:
        for fr in iter_frames(src):
            w.write(fr.rgb)
            n += 1
    return n


def expand_inputs(inputs: Sequence[Path]) -> List[Path]:
    """Videos and images as given; a folder of videos expands to its videos, a folder of images
    stays one source (an image sequence)."""
    out: List[Path] = []
    for p in map(Path, inputs):
        if not p.exists():
            raise InputError(f"no such file or folder: {p}")
        if p.is_dir():
            vids = sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_EXTS)
            if vids:
                out.extend(vids)
            elif list_images(p):
                out.append(p)
            else:
                raise InputError(f"folder holds no videos or images: {p}")
        else:
            out.append(p)
    return out


def existing_paths(paths: List[Path]) -> List[Path]:
    """`paths` unchanged if they all exist; else one InputError naming the missing ones."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise InputError(f"no such file or folder: {', '.join(missing)}")
    return paths


__all__ = ["VIDEO_EXTS", "Frame", "VideoInfo", "VideoWriter", "atomic_write_bytes", "existing_paths", "expand_inputs",
           "is_image", "iter_frames", "list_images", "probe", "read_image", "reencode", "remove_stale_temps",
           "write_image_atomic"]
