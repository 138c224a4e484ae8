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

:class:`~hfadapt.validators.callback.LabelFreeValidationCallback` scores every evaluation of a ``Trainer`` with them
(``selection.LabelFreeValidation`` does the scoring), so ``metric_for_best_model`` can name a validator.
"""

from __future__ import annotations

from collections.abc import Callable

from .data import ValidationData

Validator = Callable[[ValidationData], float]

VALIDATORS: dict[str, Validator] = {}
"""Validator functions by name; each returns a float, higher meaning a better model."""

MIN_ROWS: dict[str, tuple[int, int]] = {"snd": (1, 2), "iwv": (2, 2), "dev": (2, 2)}
"""``(source-validation rows, target rows)`` a validator needs, where more than one of each: SND compares each target
row with the others; IWV and DEV cross-fit a domain classifier over at least 2 folds of each domain."""


def min_rows(name: str) -> tuple[int, int]:
    """``(source-validation rows, target rows)`` the validator ``name`` needs (at least one of each)."""
    return MIN_ROWS.get(name, (1, 1))


def register_validator(name: str) -> Callable[[Validator], Validator]:
    """Decorator registering a validator function under ``name``.

    Raises:
        ValueError: if the name is taken.
    """

    def wrap(fn: Validator) -> Validator:
        if name in VALIDATORS:
            raise ValueError(f"validator {name!r} is already registered")
        VALIDATORS[name] = fn
        return fn

    return wrap


def validator_score(name: str, data: ValidationData) -> float:
    """Score ``data`` with the validator ``name`` (higher is better).

    Raises:
        ValueError: on an unknown name, listing the registered ones.
    """
    if name not in VALIDATORS:
        raise ValueError(f"unknown validator {name!r}; registered: {sorted(VALIDATORS)}")
    return float(VALIDATORS[name](data))


from . import importance, prediction, snd  # noqa: E402,F401  (importing registers them)

__all__ = ["MIN_ROWS", "VALIDATORS", "ValidationData", "min_rows", "register_validator", "validator_score"]
