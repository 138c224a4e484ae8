"""Whether the source-only baseline had converged: a gain over a baseline stopped while its source-validation
accuracy was still rising is overstated (the baseline had not had its best chance)."""

from __future__ import annotations

from .negative_transfer import source_only_run


def evaluations_after_best(curve: list[list[float]]) -> int:
    """How many evaluations of ``curve`` (``[[step, accuracy], ...]`` in training order) came after its best
    accuracy (the first best, as ``load_best_model_at_end`` keeps it); 0 when the last one is the best.

    Raises:
        ValueError: if ``curve`` is empty.
    """
    if not curve:
        raise ValueError("the source-validation curve is empty: the run evaluated nothing during training")
    best = max(range(len(curve)), key=lambda i: (curve[i][1], -i))
    return len(curve) - 1 - best


def baseline_convergence_warnings(runs: list[dict], patience: int = 0) -> list[str]:
    """One sentence if the source-only run stopped before its source-validation accuracy had stopped rising, by the
    criterion ``transformers.EarlyStoppingCallback`` stops on (no strict improvement for ``patience`` evaluations).

    Args:
        runs: result rows as ``hfadapt.evaluation.experiment.compare_with_source_only`` writes them (``method``,
            ``source_val_curve``: ``[[step, accuracy], ...]``, accuracies in ``[0, 1]``).
        patience: how many evaluations without a better source-validation accuracy make a plateau (the run's
            ``early_stopping_patience``); 0 (early stopping off) counts as 1: a best at the last evaluation is still
            rising.

    Returns:
        ``[sentence]`` when the baseline's best evaluation came fewer than ``patience`` evaluations before its last
        (it ended on ``max_steps``, not on the plateau), else ``[]``; also ``[]`` without a baseline or with fewer
        than two evaluations during training, which cannot show a trend.
    """
    baseline = source_only_run(runs)
    curve = (baseline or {}).get("source_val_curve") or []
    if len(curve) < 2:
        return []
    needed = max(patience, 1)
    after = evaluations_after_best(curve)
    if after >= needed:
        return []
    step, accuracy = curve[-1 - after]
    return [f"source-only may not have converged: its source-validation accuracy was best at step {step:g} "
            f"({100 * accuracy:.2f}), {after} evaluation(s) before the end of training at step {curve[-1][0]:g}, "
            f"where early stopping waits for {needed}; the gains over it may be overstated. Raise --max_steps "
            "until early stopping ends the baseline"]
