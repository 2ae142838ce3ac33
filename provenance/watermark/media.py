"""Search a video or image file for the watermark (PyAV / OpenCV decoding, luma only)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from .core import Decoder, Detection, WatermarkError, check_size

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def iter_luma(path: Path, max_frames: Optional[int] = None) -> Iterator[np.ndarray]:
    """Luma planes (uint8, H x W) of a video's frames, or of an image."""
    path = Path(path)
    if not path.is_file():
        raise WatermarkError(f"no such file: {path}")
    if path.suffix.lower() in IMAGE_EXT:
        import cv2

        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise WatermarkError(f"cannot read {path.name} as an image")
        yield img
        return
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, ValueError) as e:
        raise WatermarkError(f"cannot read {path.name} as a video: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    with container:
        if not container.streams.video:
            raise WatermarkError(f"{path.name} has no video stream")
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        n = 0
        try:
            for frame in container.decode(vs):
                yield frame.to_ndarray(format="gray")
                n += 1
                if max_frames is not None and n >= max_frames:
                    break
        except av.error.FFmpegError as e:
            if n == 0:
                raise WatermarkError(f"cannot decode {path.name}: {str(e).splitlines()[0]}") from None
            # a truncated file: search the frames that did decode


def detect_file(path: Path, max_frames: Optional[int] = None,
                progress: Optional[Callable[[int], None]] = None) -> Detection:
    """Decode the watermark of a video or image file; WatermarkError when it cannot carry one."""
    dec = Decoder()
    size = None
    for i, y in enumerate(iter_luma(path, max_frames)):
        if size is None:
            size = (y.shape[1], y.shape[0])
            check_size(*size, what=f"{Path(path).name}'s picture")
        dec.add(y)
        if progress is not None:
            progress(i + 1)
    if not len(dec):
        raise WatermarkError(f"{Path(path).name} holds no decodable frame")
    res = dec.result()
    res.extra.update({"width": size[0], "height": size[1]})
    return res
