"""The offline evaluate metric module."""

import evaluate
import numpy as np
import pytest
from transformers import EvalPrediction

from hfadapt.evaluation.metrics import METRIC_PATH, classification_metrics


def test_local_evaluate_module_by_hand():
    metric = evaluate.load(METRIC_PATH)
    out = metric.compute(predictions=[0, 1, 1, 0, 2], references=[0, 1, 0, 0, 1], num_labels=3)
    assert out["accuracy"] == pytest.approx(3 / 5)
    assert (out["recall_0"], out["recall_1"], out["recall_2"]) == pytest.approx((2 / 3, 1 / 2, 0.0))
    # F1 per class: class 0: p=2/2, r=2/3 -> 0.8; class 1: p=1/2, r=1/2 -> 0.5; class 2: 0 -> macro 1.3/3
    assert out["macro_f1"] == pytest.approx(1.3 / 3)


def test_classification_metrics_skip_unlabelled_rows():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    out = classification_metrics(EvalPrediction(predictions=logits, label_ids=np.array([0, 0, 1, -100])))
    assert out["accuracy"] == pytest.approx(2 / 3)
    assert (out["recall_0"], out["recall_1"]) == pytest.approx((0.5, 1.0))
