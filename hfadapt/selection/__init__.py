"""Label-free validators: score a model on the target domain without target labels, to pick checkpoints and
hyperparameters (Musgrave, Belongie & Lim, "Unsupervised Domain Adaptation: A Reality Check", 2021, compare them).

Every validator maps a :class:`ValidationData` (source-validation features, predictions and labels; target
features and predictions, never target labels) to one float, **higher is better**, and is registered by name:

================  ==========================================================================================
``entropy``       minus the mean prediction entropy on the target (Grandvalet & Bengio, NeurIPS 2004)
``im``            information maximisation: entropy of the mean target prediction minus the mean entropy
``snd``           soft neighbourhood density of the target predictions (Saito et al., ICCV 2021)
``iwv``           minus the importance-weighted source-validation loss (Sugiyama et al., JMLR 2007)
``dev``           minus deep embedded validation's risk: IWV with a control variate (You et al., ICML 2019)
``source_val``    source-validation accuracy (the usual, domain-blind choice; a baseline for the others)
================  ==========================================================================================

:class:`~hfadapt.selection.callback.LabelFreeValidationCallback` scores every evaluation of a ``Trainer`` with them
(``selection.LabelFreeValidation`` does the scoring), so ``metric_for_best_model`` can name a validator.
"""

from __future__ import annotations

# Importing the modules registers them.
from . import importance, prediction, snd  # noqa: F401
from .data import ValidationData
from .registry import MIN_ROWS, VALIDATORS, Validator, min_rows, register_validator, validator_score

__all__ = ["MIN_ROWS", "VALIDATORS", "ValidationData", "Validator", "min_rows", "register_validator", "validator_score"]
