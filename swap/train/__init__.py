"""The train stage: see `swap.train.loop` (TrainConfig, train, Trainer)."""
from .augment import AugmentConfig
from .loop import Trainer, TrainConfig, train
from .loss import LossConfig

__all__ = ["AugmentConfig", "LossConfig", "TrainConfig", "Trainer", "train"]
