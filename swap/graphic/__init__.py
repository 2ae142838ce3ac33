"""Graphics-based face swap (FaceForensics++ "FaceSwap" style): landmark-driven triangle warp + blending.

    from swap.graphic import GraphicSwapSettings, graphic_swap
    summary = graphic_swap(GraphicSwapSettings(source="face.jpg", target="clip.mp4", out="swapped.mp4"))

Labelled like `convert`'s output (OUT.labels/), with model architecture "graphic-faceswap".
"""
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .run import METHOD, GraphicSwapSettings, GraphicSwapSummary, SourceFace, graphic_swap, load_source, swap_frame

__all__ = ["METHOD", "GraphicSwapSettings", "GraphicSwapSummary", "SourceFace", "graphic_swap", "load_source",
           "swap_frame"]


def __getattr__(name: str):
    """The names above, loaded on first use: run.py imports numpy and cv2, and `veriswap --help` (which
    mounts swap.graphic.cli) must not."""
    if name in __all__:
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
