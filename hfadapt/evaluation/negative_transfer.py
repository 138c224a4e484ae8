"""Negative transfer: a method that does worse on the target than the source-only baseline of the same run, or
that has lost the source task the baseline learnt."""

from __future__ import annotations

import math

from ..methods import SOURCE_ONLY

TARGET_SUPERVISED = "target-supervised"
"""The run trained on *labelled* target data (an upper reference, not an adaptation method)."""

SOURCE_DROP_Z = 3.0
"""The z statistic above which a drop in source-validation accuracy is taken for a lost source task: one-sided
p = 0.0013, about 7 points on 400 reviews at 87% accuracy; on the converged sentiment grids the adapted models stayed
within about 2.5 points of the baseline (z <= 1.03) unless they had failed (``benchmarks/source_task_scan.py``)."""


def source_only_run(runs: list[dict]) -> dict | None:
    """The first result row whose ``method`` is the source-only baseline (``"none"``), or ``None`` without one.

    Raises:
        KeyError: a row without ``method``.
    """
    return next((run for run in runs if run["method"] == SOURCE_ONLY), None)


def negative_transfer_warnings(runs: list[dict], tolerance: float = 0.0) -> list[str]:
    """One sentence per adaptation run below the source-only baseline of the same run.

    Args:
        runs: result rows as ``hfadapt.evaluation.experiment.compare_with_source_only`` writes them (``method``,
            ``target_accuracy`` in ``[0, 1]`` or ``None`` without target labels, optionally ``validators``: a
            dict of label-free scores, higher is better).
        tolerance: accuracy drop (in ``[0, 1]``) tolerated before warning.

    With target labels the warning gives the drop in points; without them (``target_accuracy`` is ``None``), each
    validator that scores the method below the baseline is named. Either way, :func:`source_task_warnings` adds a
    sentence for a method that has lost the source task, which needs no target label.

    Raises:
        ValueError: from :func:`source_task_warnings`, on a source-validation accuracy outside ``[0, 1]``.
    """
    baseline = source_only_run(runs)
    if baseline is None:
        return []
    warnings = []
    for run in runs:
        if run["method"] in (SOURCE_ONLY, TARGET_SUPERVISED):
            continue
        if run.get("target_accuracy") is not None and baseline.get("target_accuracy") is not None:
            drop = baseline["target_accuracy"] - run["target_accuracy"]
            if drop > tolerance:
                warnings.append(f"negative transfer: {run['method']} is {100 * drop:.2f} points below source-only on "
                                f"the target ({100 * run['target_accuracy']:.2f} vs "
                                f"{100 * baseline['target_accuracy']:.2f})")
            continue
        worse = [name for name, score in (run.get("validators") or {}).items()
                 if score < (baseline.get("validators") or {}).get(name, float("-inf"))]
        if worse:
            warnings.append(f"possible negative transfer (no target labels): {run['method']} scores below source-only "
                            f"on the label-free validators {', '.join(sorted(worse))}")
    return warnings + source_task_warnings(runs)


def source_accuracy_drop_z(baseline: float, method: float, rows: int) -> float:
    """The two-proportion z statistic of a drop in accuracy from ``baseline`` to ``method`` on ``rows`` rows each,
    ``(a_0 - a_1) / sqrt(2 a (1 - a) / n)`` with the pooled ``a = (a_0 + a_1) / 2`` (positive: the method is below;
    0 when ``a`` is 0 or 1). Both models score the same rows, so the test is conservative (Agresti, *Categorical
    Data Analysis*, 2002, section 10.1: paired proportions vary less than independent ones).

    Raises:
        ValueError: if ``rows < 1`` or an accuracy is outside ``[0, 1]``.
    """
    if rows < 1 or not (0.0 <= baseline <= 1.0 and 0.0 <= method <= 1.0):
        raise ValueError(f"need accuracies in [0, 1] on at least one row, got {baseline}, {method} on {rows} rows")
    pooled = (baseline + method) / 2
    if pooled in (0.0, 1.0):
        return 0.0
    return (baseline - method) / math.sqrt(2 * pooled * (1 - pooled) / rows)


def source_task_warnings(runs: list[dict], z: float = SOURCE_DROP_Z) -> list[str]:
    """One sentence per adaptation run whose source-validation accuracy is below the baseline's by more than chance
    explains (:func:`source_accuracy_drop_z` above ``z``): a method that has lost the source task, e.g. one that
    trained on pseudo-labels of a classifier still at chance. It needs no target label.

    Args:
        runs: result rows as ``hfadapt.evaluation.experiment.compare_with_source_only`` writes them (``method``,
            ``source_val_accuracy`` in ``[0, 1]``, ``source_val_rows``: how many rows it was scored on; rows
            without them are skipped).
        z: the z statistic above which a drop is reported.

    Raises:
        ValueError: from :func:`source_accuracy_drop_z`, on a source-validation accuracy outside ``[0, 1]``.
    """
    baseline = source_only_run(runs)
    if baseline is None or baseline.get("source_val_accuracy") is None:
        return []
    warnings = []
    for run in runs:
        rows = run.get("source_val_rows")
        if run["method"] in (SOURCE_ONLY, TARGET_SUPERVISED) or not rows or run.get("source_val_accuracy") is None:
            continue
        before, after = baseline["source_val_accuracy"], run["source_val_accuracy"]
        drop = source_accuracy_drop_z(before, after, rows)
        if drop > z:
            warnings.append(f"{run['method']} has lost the source task: {100 * after:.2f} on source validation against "
                            f"source-only's {100 * before:.2f} on the same {rows} rows (z = {drop:.1f}), so its "
                            "target predictions are not to be trusted either; compare the two runs' source-"
                            "validation curves and its loss components (e.g. pseudo-labels taken while the source "
                            "task was still at chance)")
    return warnings
