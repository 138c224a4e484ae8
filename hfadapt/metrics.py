"""Classification metrics for ``Trainer(compute_metrics=...)``, computed with scikit-learn (offline)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from transformers import EvalPrediction


def classification_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
    """Accuracy and macro-F1 (both in [0, 1]) from logits ``(N, C)`` and labels ``(N,)``; rows labelled -100 are skipped."""
    logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
    labels = np.asarray(eval_pred.label_ids)
    keep = labels != -100
    preds = np.asarray(logits).argmax(-1)[keep]
    labels = labels[keep]
    return {"accuracy": float(accuracy_score(labels, preds)), "macro_f1": float(f1_score(labels, preds, average="macro"))}
