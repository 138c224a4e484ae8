"""Subsample sizes for label-shifted copies of a binary domain: how many rows of each class to keep so that one
class makes a given share of them (``benchmarks/label_shift_data.py``, ``benchmarks/prior_matching_label_shift.py``).
"""

from __future__ import annotations


def label_shift_sizes(n_positive: int, n_negative: int, share: float) -> tuple[int, int]:
    """``(positives, negatives)`` to keep of ``n_positive`` and ``n_negative`` rows so that positives make ``share`` of
    the subsample, to the nearest row: as many rows as the class that bounds the size allows.

    Raises:
        ValueError: ``share`` outside ``(0, 1)``, or a class with no row.
    """
    if not 0 < share < 1:
        raise ValueError(f"share must lie in (0, 1), got {share}")
    if n_positive < 1 or n_negative < 1:
        raise ValueError(f"both classes need rows to set their shares, got {n_positive} and {n_negative}")
    positives = min(n_positive, round(n_negative * share / (1 - share)))
    return positives, min(n_negative, round(positives * (1 - share) / share))
