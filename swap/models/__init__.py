"""Model registry (in the manner of timm's `create_model`) and loading of trained model folders.

    model = create_model("hq", resolution=128)
    model, config = load_model("runs/ab", device="cpu")
    face, mask = model(x, decoder="b")          # x: N,3,R,R float in [0,1]
    swapped, mask = swap_crop(model, config, crop_rgb, "a2b")   # aligned crop (any size) -> same size
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List

from .nets import HQModel, OriginalModel, SwapModel

_REGISTRY: Dict[str, Callable[..., SwapModel]] = {}
DEFAULT_ARGS: Dict[str, Dict[str, Any]] = {}


def register_model(name: str, defaults: Dict[str, Any]):
    def deco(fn):
        _REGISTRY[name] = fn
        DEFAULT_ARGS[name] = dict(defaults)
        return fn
    return deco


register_model("original", {"resolution": 64, "enc_dims": [128, 256, 512, 1024], "latent": 1024,
                            "dec_dims": [256, 128, 64]})(OriginalModel)
register_model("hq", {"resolution": 128, "e_dims": 64, "ae_dims": 256, "d_dims": 64, "mask_dims": 16})(HQModel)


def list_models() -> List[str]:
    return sorted(_REGISTRY)


def model_args(name: str, **overrides: Any) -> Dict[str, Any]:
    """Full constructor arguments (defaults + overrides); what config.json records."""
    if name not in _REGISTRY:
        from ..errors import InputError
        raise InputError(f"unknown model {name!r}; choose from {', '.join(list_models())}")
    args = dict(DEFAULT_ARGS[name])
    unknown = set(overrides) - set(args)
    if unknown:
        from ..errors import InputError
        raise InputError(f"model {name!r} has no option(s) {', '.join(sorted(unknown))}")
    args.update({k: v for k, v in overrides.items() if v is not None})
    return args


def create_model(name: str, **kwargs: Any) -> SwapModel:
    args = model_args(name, **kwargs)
    try:
        return _REGISTRY[name](**args)
    except ValueError as e:
        from ..errors import InputError
        raise InputError(str(e)) from e


def load_model(model_dir, device="cpu"):
    """(model in eval mode on `device`, config dict) from a trained model folder. See `swap.train.checkpoint`."""
    from .io import load_model as _load
    return _load(model_dir, device)


def swap_crop(model, config, crop_rgb, direction: str = "a2b"):
    from .io import swap_crop as _swap
    return _swap(model, config, crop_rgb, direction)


def swap_crops(model, config, crops, direction: str = "a2b"):
    from .io import swap_crops as _swap
    return _swap(model, config, crops, direction)


__all__ = ["create_model", "list_models", "model_args", "register_model", "load_model", "swap_crop", "swap_crops",
           "SwapModel", "OriginalModel", "HQModel"]
