"""`--device auto|cpu|cuda|cuda:N` -> a torch.device, with one clear error when CUDA is asked for and absent.
Shared by train, convert and detect (torch is imported on call, so importers stay light)."""
from __future__ import annotations

from .errors import InputError


def resolve_device(name: str, local_rank: int = 0):
    import torch

    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError("--device cuda requested but no CUDA device is available")
        return torch.device(name if ":" in name else f"cuda:{local_rank}")
    if name == "cpu":
        return torch.device("cpu")
    raise InputError(f"unknown device {name!r}: use auto, cpu or cuda")
