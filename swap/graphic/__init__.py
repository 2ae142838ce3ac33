"""Graphics-based face swap (FaceForensics++ "FaceSwap" style): landmark-driven triangle warp + blending.

    from swap.graphic import GraphicSwapSettings, graphic_swap
    summary = graphic_swap(GraphicSwapSettings(source="face.jpg", target="clip.mp4", out="swapped.mp4"))

Labelled like `convert`'s output (OUT.labels/), with model architecture "graphic-faceswap".
"""
from .run import METHOD, GraphicSwapSettings, GraphicSwapSummary, SourceFace, graphic_swap, load_source, swap_frame

__all__ = ["METHOD", "GraphicSwapSettings", "GraphicSwapSummary", "SourceFace", "graphic_swap", "load_source",
           "swap_frame"]
