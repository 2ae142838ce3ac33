"""Swap models: the registry (`registry`, in the manner of timm's `create_model`), the networks (`nets`),
model folders on disk (`checkpoint`: crash-safe saves, loading, swapping crops), `inspect` and `cli`
(`veriswap model`).

    model = create_model("hq", resolution=128)
    model, config = load_model("runs/ab", device="cpu")
    face, mask = model(x, decoder="b")          # x: N,3,R,R float in [0,1]
    swapped, mask = swap_crop(model, config, crop_rgb, "a2b")   # aligned crop (any size) -> same size

Names resolve lazily (torch loads on first use), so `veriswap model --help` stays fast.
"""
from __future__ import annotations

__all__ = ["create_model", "list_models", "model_args", "register_model", "load_model", "swap_crop", "swap_crops",
           "MODELS", "SwapModel", "OriginalModel", "HQModel"]


def __getattr__(name: str):
    if name in ("create_model", "list_models", "model_args", "register_model", "MODELS"):
        from . import registry
        return getattr(registry, name)
    if name in ("load_model", "swap_crop", "swap_crops"):
        from . import checkpoint
        return getattr(checkpoint, name)
    if name in ("SwapModel", "OriginalModel", "HQModel"):
        from . import nets
        return getattr(nets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
