"""The swap-model registry (a `provenance.registry.Registry`, in the manner of timm's `create_model`):
name -> network class, with each model's default constructor arguments (what config.json records)."""
from __future__ import annotations

from typing import Any, Dict, List

from provenance.registry import Registry

from ..errors import InputError
from .nets import HQModel, OriginalModel, SwapModel

MODELS = Registry("model")


def register_model(name: str, defaults: Dict[str, Any]):
    """`@register_model("name", {defaults})` on a SwapModel class (or factory)."""
    return MODELS.register(name, defaults=dict(defaults))


register_model("original", {"resolution": 64, "enc_dims": [128, 256, 512, 1024], "latent": 1024,
                            "dec_dims": [256, 128, 64]})(OriginalModel)
register_model("hq", {"resolution": 128, "e_dims": 64, "ae_dims": 256, "d_dims": 64, "mask_dims": 16})(HQModel)

def list_models() -> List[str]:
    return sorted(MODELS)


def model_args(name: str, **overrides: Any) -> Dict[str, Any]:
    """Full constructor arguments (defaults + overrides); what config.json records."""
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; choose from {', '.join(list_models())}")
    args = dict(MODELS.info[name]["defaults"])
    unknown = set(overrides) - set(args)
    if unknown:
        raise InputError(f"model {name!r} has no option(s) {', '.join(sorted(unknown))}")
    args.update({k: v for k, v in overrides.items() if v is not None})
    return args


def create_model(name: str, **kwargs: Any) -> SwapModel:
    args = model_args(name, **kwargs)
    try:
        return MODELS.create(name, **args)
    except ValueError as e:
        raise InputError(str(e)) from e
