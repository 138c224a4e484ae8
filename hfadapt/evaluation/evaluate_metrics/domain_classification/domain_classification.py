"""An ``evaluate`` metric that works offline: accuracy, macro-F1 and per-class recall of a classifier.

``evaluate.load("accuracy")`` fetches its script from the Hub; this module ships with hfadapt and loads from its
folder: ``evaluate.load(hfadapt.evaluation.metrics.METRIC_PATH)``. The numbers come from scikit-learn.
"""

import datasets
import evaluate
from sklearn.metrics import accuracy_score, f1_score, recall_score

_DESCRIPTION = "Accuracy, macro-F1 and per-class recall of class predictions against references (scikit-learn)."
_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted class ids, one per example.
    references: true class ids, one per example.
    num_labels: number of classes (per-class recall is reported for 0 .. num_labels - 1); default: the largest id
        seen plus one.
Returns:
    accuracy, macro_f1 (in [0, 1]) and recall_<k> for each class k (in [0, 1]; 0 for a class with no example).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DomainClassification(evaluate.Metric):
    """Accuracy, macro-F1 and per-class recall (Metric module for ``evaluate.load(path)``)."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, num_labels=None):
        if len(references) == 0:
            raise ValueError("no examples to score")
        n = num_labels if num_labels is not None else max(max(predictions), max(references)) + 1
        labels = list(range(n))
        recall = recall_score(references, predictions, labels=labels, average=None, zero_division=0)
        return {
            "accuracy": float(accuracy_score(references, predictions)),
            "macro_f1": float(f1_score(references, predictions, labels=labels, average="macro", zero_division=0)),
            **{f"recall_{k}": float(r) for k, r in zip(labels, recall, strict=True)},
        }
