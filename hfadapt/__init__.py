"""hfadapt: cross-domain transfer learning for HuggingFace models.

`AdaptTrainer` + `AdaptConfig` adapt a pretrained classifier from labelled source data to unlabelled target
data with alignment losses (DANN, MK-MMD, ...) from the registry in :mod:`hfadapt.methods`.
"""

from .cli.runner import adapt
from .data.loading import DataArguments
from .fusion import EnsembleConfig, EnsembleForClassification, WeightEMACallback
from .methods import ALIGNMENT_METHODS, AlignmentMethod, AlignmentOutput, register_method
from .methods.grl import GradientReversalLayer, grl_warm_start, reverse_gradient
from .modeling.model import AdaptModel, AdaptModelOutput
from .modeling.multitask import MultiTaskConfig, MultiTaskModel
from .selection.callback import LabelFreeValidationCallback
from .trainer.callbacks import AdaptationScheduleCallback
from .trainer.config import AdaptConfig
from .trainer.trainer import AdaptTrainer

__version__ = "0.1.0"

__all__ = [
    "ALIGNMENT_METHODS",
    "AdaptConfig",
    "AdaptModel",
    "AdaptModelOutput",
    "AdaptTrainer",
    "AlignmentMethod",
    "AlignmentOutput",
    "AdaptationScheduleCallback",
    "DataArguments",
    "GradientReversalLayer",
    "LabelFreeValidationCallback",
    "MultiTaskConfig",
    "MultiTaskModel",
    "grl_warm_start",
    "register_method",
    "reverse_gradient",
    "EnsembleConfig",
    "EnsembleForClassification",
    "WeightEMACallback",
    "adapt",
]
