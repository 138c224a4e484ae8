"""The trainer and its configuration: `AdaptTrainer`, `AdaptConfig`, callbacks, checkpoints, model cards and the
checks run before training."""

from .config import AdaptConfig
from .trainer import AdaptTrainer

__all__ = ["AdaptConfig", "AdaptTrainer"]
