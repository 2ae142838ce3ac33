"""Invisible watermark as a C2PA soft binding (numpy + OpenCV, no torch); see docs/provenance.md.

    from provenance.watermark import Embedder, detect_frames, payload_id
    emb = Embedder(payload_id(label, signer_public_key), (width, height))
    marked = [emb(f) for f in frames]          # RGB uint8 frames
    detect_frames(marked).payload_id

Names are loaded on first use, so `veriswap provenance --help` does not pay for numpy and OpenCV.
"""
from __future__ import annotations

_CORE = ("ALG", "ALG_VERSION", "Decoder", "Detection", "Embedder", "WatermarkError", "detect_frames",
         "embed_frame", "format_id", "payload_id")
__all__ = list(_CORE) + ["detect_file", "resolve", "soft_binding"]


def __getattr__(name: str):
    if name in _CORE:
        from . import core
        return getattr(core, name)
    if name == "detect_file":
        from .media import detect_file
        return detect_file
    if name == "resolve":
        from .resolve import resolve
        return resolve
    if name == "soft_binding":
        from .assertion import soft_binding
        return soft_binding
    raise AttributeError(f"module 'provenance.watermark' has no attribute {name!r}")
