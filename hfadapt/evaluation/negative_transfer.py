"""Negative transfer: a method that does worse on the target than the source-only baseline of the same run."""

from __future__ import annotations

from ..methods import SOURCE_ONLY

TARGET_SUPERVISED = "target-supervised"
"""The run trained on *labelled* target data (an upper reference, not an adaptation method)."""


def negative_transfer_warnings(runs: list[dict], tolerance: float = 0.0) -> list[str]:
    """One sentence per adaptation run below the source-only baseline of the same run.

    Args:
        runs: result rows as ``hfadapt.evaluation.experiment.compare_with_source_only`` writes them (``method``,
            ``target_accuracy`` in ``[0, 1]`` or ``None`` without target labels, optionally ``validators``: a
            dict of label-free scores, higher is better).
        tolerance: accuracy drop (in ``[0, 1]``) tolerated before warning.

    With target labels the warning gives the drop in points; without them (``target_accuracy`` is ``None``), each
    validator that scores the method below the baseline is named, the only evidence there is.
    """
    baseline = next((r for r in runs if r["method"] == SOURCE_ONLY), None)
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
    return warnings
