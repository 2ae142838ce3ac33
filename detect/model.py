"""The detector: a timm classifier with one logit (probability of fake), its folder and inference.

Detector folder: model.safetensors (best weights), config.json (timm arch, input size, normalisation,
calibrated threshold, `extra.backbone`: where the starting weights came from), metrics.json (training
history, validation metrics), model_card.json + MODEL_CARD.md (`detect eval`, detect.card). Training
starts from pretrained weights the timm way (detect.backbone); a trained detector is rebuilt with
`pretrained=False` and its own model.safetensors.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from swap.errors import InputError
from provenance import schema as S
from provenance.fsutil import atomic_write_bytes, load_versioned_json
from provenance.schema import validate
from swap.device import resolve_device

FORMAT = "veriswap-detector"
VERSION = 1


# what `DetectorConfig.load` accepts (provenance.schema: a wrong type is one line naming file and field)
_CONFIG_SPEC = S.Obj(
    {"arch": S.Str(nonempty=True), "input_size": S.Int(16, 4096), "mean": S.Array((3,), what="3 numbers"),
     "std": S.Array((3,), lo=1e-6, what="3 positive numbers")},
    {"threshold": S.Num(0, 1), "threshold_method": S.Str(), "eer_threshold": S.Opt(S.Num(0, 1)),
     "crop_scale": S.Num(1.0, 3.0), "crop_size": S.Int(32, 1024), "sbi": S.Bool(), "weights_init": S.Opt(S.Str()),
     "epochs": S.Int(0), "best_epoch": S.Int(-1), "extra": S.Obj()}, what="an object (a detector config)")


@dataclass
class DetectorConfig:
    arch: str
    input_size: int
    mean: List[float]
    std: List[float]
    threshold: float = 0.5              # calibrated on the validation split
    threshold_method: str = "default"   # "balanced_accuracy" (Youden J on val) | "default"
    eer_threshold: Optional[float] = None
    crop_scale: float = 1.3             # face crop the model expects (x detector box)
    crop_size: int = 256
    sbi: bool = False
    weights_init: Optional[str] = None  # local file the training started from, None = random init
    epochs: int = 0
    best_epoch: int = -1
    format: str = FORMAT
    version: int = VERSION
    extra: dict = field(default_factory=dict)

    def save(self, folder: Path) -> None:
        atomic_write_bytes(Path(folder) / "config.json", json.dumps(asdict(self), indent=2).encode())

    @classmethod
    def load(cls, folder: Path) -> "DetectorConfig":
        p = Path(folder) / "config.json"
        if not Path(folder).is_dir():
            raise InputError(f"no such detector folder: {folder}")
        if not p.is_file():
            raise InputError(f"not a detector folder (no config.json): {folder}")
        d = validate(load_versioned_json(p, FORMAT, VERSION, "detector config"), _CONFIG_SPEC, p)
        try:
            return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
        except TypeError:
            raise InputError(f"detector config.json is malformed: {p}") from None


def create_model(arch: str, pretrained: bool = False, weights: Optional[str] = None):
    """timm classifier with one output. For training, starting weights come the timm way
    (`detect.backbone.create_backbone`: `pretrained=True` from the hub cache, `weights=FILE` through
    `pretrained_cfg_overlay`); the default here is random init, for loading a trained detector."""
    from .backbone import create_backbone

    return create_backbone(arch, pretrained=pretrained, weights=weights)[0]


def default_input_size(model) -> int:
    return int(model.pretrained_cfg.get("input_size", (3, 224, 224))[-1])


def normalization(model) -> Tuple[List[float], List[float]]:
    cfg = model.pretrained_cfg
    return list(cfg.get("mean", (0.485, 0.456, 0.406))), list(cfg.get("std", (0.229, 0.224, 0.225)))


def read_state_dict(path: Path) -> dict:
    """Tensors of a weights file: safetensors, or torch.load(weights_only=True) (never unpickles code)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such weights file: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is a bad input
        raise InputError(f"cannot read weights file {path} ({type(e).__name__})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(hasattr(v, "shape") for v in sd.values()):
        raise InputError(f"weights file holds no state dict of tensors: {path}")
    return {k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}


def load_weights(model, path: Path, strict_head: bool = False) -> dict:
    """Load matching tensors into `model`; tensors whose shape differs (the 1000-class head of an
    ImageNet checkpoint) are skipped unless `strict_head`. Returns counts."""
    sd = read_state_dict(path)
    own = model.state_dict()
    ok = {k: v for k, v in sd.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if strict_head and len(ok) != len(own):
        raise InputError(f"weights file {path} does not match this detector's architecture")
    if not ok or len(ok) < 0.5 * len(own):
        raise InputError(f"weights file {path} does not fit architecture (only {len(ok)} of {len(own)} tensors match)")
    model.load_state_dict(ok, strict=False)
    return {"loaded": len(ok), "model_tensors": len(own), "skipped": len(sd) - len(ok)}


def save_weights(model, path: Path) -> None:
    from safetensors.torch import save

    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(Path(path), save(sd))


def preprocess(crops: Sequence[np.ndarray], size: int, mean: Sequence[float], std: Sequence[float]):
    """RGB uint8 crops -> normalised NCHW float tensor at `size` px."""
    import torch

    arr = np.stack([c if c.shape[0] == size and c.shape[1] == size else
                    cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA if c.shape[0] > size else cv2.INTER_LINEAR)
                    for c in crops]).astype(np.float32) / 255.0
    arr = (arr - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))


class Detector:
    """A trained detector loaded from its folder; `predict` gives P(fake) per crop, batched."""

    def __init__(self, folder: Path, device: str = "cpu"):
        """`device`: cpu | cuda | cuda:N | auto (as train and convert take it)."""
        self.folder = Path(folder)
        self.config = DetectorConfig.load(self.folder)
        wp = self.folder / "model.safetensors"
        if not wp.is_file():
            raise InputError(f"detector folder has no model.safetensors: {folder}")
        self.model = create_model(self.config.arch)
        load_weights(self.model, wp, strict_head=True)
        self.device = resolve_device(device)
        self.model.to(self.device).eval()
        if self.device.type == "cpu":      # oneDNN's convolutions: 0.30 -> 0.22 s for 50 crops (resnet10t @ 128)
            import torch

            self.model.to(memory_format=torch.channels_last)

    @property
    def threshold(self) -> float:
        return self.config.threshold

    def predict(self, crops: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        import torch

        out = []
        c = self.config
        with torch.inference_mode():
            for i in range(0, len(crops), batch_size):
                x = preprocess(crops[i:i + batch_size], c.input_size, c.mean, c.std).to(self.device)
                out.append(torch.sigmoid(self.model(x).float().view(-1)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)
