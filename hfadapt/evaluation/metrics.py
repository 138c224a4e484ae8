"""Classification metrics for ``Trainer(compute_metrics=...)`` through ``evaluate``, offline.

``evaluate.load("accuracy")`` needs the Hub (its scripts are not in the wheel); hfadapt ships a local metric
module, ``evaluate_metrics/domain_classification`` (accuracy, macro-F1, per-class recall, computed with
scikit-learn), which ``evaluate.load`` reads from its folder.
"""

from __future__ import annotations

import functools
from pathlib import Path

import evaluate
import numpy as np
from transformers import EvalPrediction

METRIC_PATH = str(Path(__file__).parent / "evaluate_metrics" / "domain_classification")
"""Folder of the local ``evaluate`` metric module: ``evaluate.load(METRIC_PATH)`` works without the Hub."""


@functools.cache
def domain_classification_metric() -> evaluate.EvaluationModule:
    """The local ``evaluate`` module (loaded once per process)."""
    return evaluate.load(METRIC_PATH)


def classification_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
    """Accuracy, macro-F1 and ``recall_<k>`` per class (all in [0, 1]) from logits ``(N, C)`` and labels
    ``(N,)``; rows labelled -100 are skipped."""
    logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
    logits = np.asarray(logits)
    labels = np.asarray(eval_pred.label_ids)
    keep = labels != -100
    return domain_classification_metric().compute(
        predictions=logits.argmax(-1)[keep].tolist(), references=labels[keep].tolist(), num_labels=logits.shape[-1]
    )
