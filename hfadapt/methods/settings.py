"""Checks shared by the methods' settings dataclasses: each raises ``ValueError`` naming the setting."""

from __future__ import annotations

import math


def check_weights(settings, *names: str) -> None:
    """Raise ``ValueError`` unless each named field of ``settings`` is a finite number >= 0 (a loss weight)."""
    for name in names:
        value = getattr(settings, name)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")


def check_positive(settings, *names: str) -> None:
    """Raise ``ValueError`` unless each named field of ``settings`` is > 0."""
    for name in names:
        if not getattr(settings, name) > 0:
            raise ValueError(f"{name} must be > 0, got {getattr(settings, name)}")


def check_fraction(settings, name: str, low_open: bool = False, high_open: bool = True) -> None:
    """Raise ``ValueError`` unless the field ``name`` of ``settings`` lies in ``[0, 1]``, ``(0, ...`` with
    ``low_open`` and ``..., 1)`` with ``high_open``."""
    value = getattr(settings, name)
    above = value > 0.0 if low_open else value >= 0.0
    below = value < 1.0 if high_open else value <= 1.0
    if not (above and below):
        span = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise ValueError(f"{name} must be in {span}, got {value}")
