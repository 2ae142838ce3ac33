"""What a training run is asked to do: `TrainConfig` (with `LossConfig` and `AugmentConfig`) and its checks.

No torch import: a bad setting is one clear InputError before any heavy library loads, for the CLI and a
notebook call of `train(TrainConfig(...))` alike. Messages name the settings by their CLI options.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

from ..errors import InputError

DEFAULT_LR = 5e-5
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
HQ_OPTIONS = {"resolution": "--resolution", "ae_dims": "--ae-dims", "e_dims": "--e-dims", "d_dims": "--d-dims"}


@dataclass
class AugmentConfig:
    rotate: float = 10.0
    zoom: float = 0.05
    shift: float = 0.05
    flip: float = 0.5
    warp_sigma: float = 5.0 / 256
    warp_points: int = 5
    lightness: float = 0.30
    ab: float = 0.08
    coverage: float = 1.0
    warp: bool = True                  # False: the input is the (affine-only) target
    warp_to_landmarks: bool = False    # replace the random warp by a warp to the other identity's landmarks

@dataclass
class LossConfig:
    ssim: float = 1.0
    l1: float = 1.0
    mse: float = 0.0           # faceswap/DeepFaceLab pair SSIM with MSE; L1 is sharper on faces, so the default
    mask: float = 1.0
    eyes: float = 3.0
    mouth: float = 2.0
    background: float = 0.05   # weight outside the face hull (keeps the border learnable, mostly ignored)
    window: int = 11


@dataclass
class TrainConfig:
    faces_a: str
    faces_b: str
    model_dir: str
    model: Optional[str] = None            # None: the folder's saved architecture, else "original"
    model_options: Dict[str, Any] = field(default_factory=dict)   # e.g. {"resolution": 128} for hq
    batch_size: int = 16                   # per process (DDP multiplies it by the world size)
    iterations: Optional[int] = None       # total iterations (resume counts those already done)
    time_limit: Optional[float] = None     # seconds for this run
    save_every: int = 250
    preview_every: int = 250
    snapshot_every: int = 0                # also keep a copy at every multiple: snapshots/NNNNNNNN/
    keep_best: bool = False                # also keep best/: the save whose interval had the lowest mean loss
    timelapse: bool = False                # also keep each preview: timelapse/NNNNNNNN.png
    lr: Optional[float] = None             # None: 5e-5 for a new model, the saved rate on resume
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    coverage: float = 1.0
    uniform_yaw: bool = False              # draw every 10-degree yaw bin equally often (DeepFaceLab's option)
    load_weights: Optional[str] = None     # a new model starts from this model folder's weights ...
    load_parts: str = "encoder"            # ... its encoder (faceswap's default) or "all"
    freeze_encoder: bool = False           # this run trains the decoders only
    device: str = "auto"                   # auto | cpu | cuda | cuda:N
    precision: str = "auto"                # auto (CUDA: bf16 if supported else fp16; CPU: bf16 with AMX/AVX512-BF16 else fp32) | fp32 | bf16 | fp16
    compile: bool = False
    compile_mode: Optional[str] = None     # torch.compile mode; "reduce-overhead" adds CUDA graphs
    channels_last: Optional[bool] = None   # default: on for CUDA
    seed: int = 0
    identity_check: bool = True
    preview_faces: int = 4
    progress: bool = True
    threads: Optional[int] = None
    log_every: int = 1

    def check(self, stop: bool = True) -> None:
        """Ranges and conflicting settings (what `veriswap train` refuses), InputError naming the option.
        `stop=False`: a stop condition is not required (a Trainer built to step by hand)."""
        if stop and self.iterations is None and self.time_limit is None:
            raise InputError("give a stop condition: --iterations N and/or --time-limit 10m")
        # the library takes any positive rate (the divergence tests use inf); the CLI also caps it below 1
        if self.lr is not None and not 0 < self.lr:
            raise InputError(f"--lr must be between 0 and 1, got {self.lr}")
        w = self.loss
        if min(w.ssim, w.l1, w.mse, w.mask, w.eyes, w.mouth) < 0:
            raise InputError("loss weights must be >= 0")
        if w.ssim == w.l1 == w.mse == 0:
            raise InputError("all face loss weights are 0: set --ssim-weight, --l1-weight or --mse-weight")
        if self.batch_size < 1 or self.save_every < 0 or self.preview_every < 0 or self.snapshot_every < 0:
            raise InputError("--batch-size must be >= 1, --save-every/--preview-every/--snapshot-every >= 0")
        if not 0.3 <= self.coverage <= 1.0:
            raise InputError("--coverage must be between 0.3 and 1.0")
        if self.load_parts not in ("encoder", "all"):
            raise InputError(f"load_parts must be 'encoder' or 'all', got {self.load_parts!r}")
        if self.load_parts == "all" and self.load_weights is None:
            raise InputError("--load-all goes with --load-weights MODEL_DIR")
        if not self.augment.warp and self.augment.warp_to_landmarks:
            raise InputError("--no-warp and --warp-to-landmarks contradict each other: pick one")
        for p in (self.faces_a, self.faces_b):
            if not Path(p).is_dir():
                raise InputError(f"faces folder not found: {p}")
        if self.model_options and (self.model or "original") != "hq" and set(self.model_options) <= set(HQ_OPTIONS):
            raise InputError("--resolution/--ae-dims/--e-dims/--d-dims apply to --model hq")
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown precision {self.precision!r}: use auto, fp32, bf16 or fp16")
        if self.compile_mode is not None and self.compile_mode not in COMPILE_MODES:
            raise InputError(f"unknown compile mode {self.compile_mode!r}: use one of {', '.join(COMPILE_MODES)}")
