"""The train stage: a shared-encoder / two-decoder swap model trained on two faces folders.

    from swap.train import TrainConfig, train
    summary = train(TrainConfig(faces_a="faces/a", faces_b="faces/b", model_dir="runs/ab", iterations=1000))

`config` (TrainConfig and its checks), `loop` (the Trainer), `setup` (device, DDP, precision, compile),
`outputs` (checkpoints, previews, loss log, identity check), `data` / `augment` / `loss`, `cli`.
"""
from __future__ import annotations

__all__ = ["AugmentConfig", "LossConfig", "TrainConfig", "Trainer", "train"]


def __getattr__(name: str):
    # lazy, so `veriswap --help` and the CLI modules of this stage import none of the heavy libraries
    if name in ('TrainConfig',):
        from . import config
        return getattr(config, name)
    if name in ('Trainer', 'train'):
        from . import loop
        return getattr(loop, name)
    if name in ('AugmentConfig',):
        from . import augment
        return getattr(augment, name)
    if name in ('LossConfig',):
        from . import loss
        return getattr(loss, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
