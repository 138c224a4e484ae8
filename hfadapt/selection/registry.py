"""The registry of label-free validators: each maps a :class:`~hfadapt.selection.data.ValidationData` to one float,
higher meaning a better model. The validator modules import this module; :mod:`hfadapt.selection` imports them."""

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
