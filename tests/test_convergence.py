"""The baseline-convergence check: a source-only run that ended on max_steps while its accuracy still rose."""

import pytest

from hfadapt.evaluation import baseline_convergence_warnings
from hfadapt.evaluation.convergence import evaluations_after_best


def runs(curve, method="none"):
    return [{"method": method, "source_val_curve": curve}, {"method": "self_training", "source_val_curve": []}]


def test_evaluations_after_the_first_best():
    assert evaluations_after_best([[50, 0.8], [100, 0.9], [150, 0.85]]) == 1
    assert evaluations_after_best([[50, 0.8], [100, 0.9], [150, 0.9], [200, 0.7]]) == 2  # the first best is kept
    assert evaluations_after_best([[50, 0.8], [100, 0.9]]) == 0
    with pytest.raises(ValueError, match="evaluated nothing"):
        evaluations_after_best([])


def test_a_baseline_still_rising_within_its_patience_is_flagged():
    curve = [[50, 0.80], [100, 0.85], [150, 0.88], [200, 0.87], [250, 0.86]]  # best 2 evaluations before the end
    (warning,) = baseline_convergence_warnings(runs(curve), patience=3)
    assert "best at step 150 (88.00), 2 evaluation(s) before the end of training at step 250" in warning
    assert "waits for 3" in warning and "--max_steps" in warning


def test_a_plateau_of_patience_evaluations_is_converged():
    curve = [[50, 0.80], [100, 0.88], [150, 0.87], [200, 0.88], [250, 0.86]]  # the tie at 200 is no improvement
    assert baseline_convergence_warnings(runs(curve), patience=3) == []


def test_without_early_stopping_only_a_best_last_evaluation_is_flagged():
    assert baseline_convergence_warnings(runs([[50, 0.8], [100, 0.9]]), patience=0)
    assert baseline_convergence_warnings(runs([[50, 0.9], [100, 0.8]]), patience=0) == []


def test_nothing_to_tell_without_a_baseline_or_a_trend():
    assert baseline_convergence_warnings(runs([[50, 0.8], [100, 0.9]], method="dann"), patience=3) == []
    assert baseline_convergence_warnings(runs([[100, 0.9]]), patience=3) == []
    assert baseline_convergence_warnings(runs([]), patience=3) == []


def test_the_run_report_carries_the_warning(tmp_path):
    import json

    from hfadapt.evaluation.report import write_report

    curve = [[50, 0.80], [100, 0.85]]
    runs_ = [{"method": "none", "source_val_accuracy": 0.85, "target_accuracy": 0.7, "target_gain_vs_source_only": 0.0,
              "source_val_curve": curve}]
    results = {"source": "books", "target": "kitchen", "target_labels": True, "runs": runs_, "negative_transfer": [],
               "convergence": baseline_convergence_warnings(runs_, patience=3)}
    (tmp_path / "results.json").write_text(json.dumps(results))
    text = write_report(tmp_path).read_text()
    assert "> **Warning:** source-only may not have converged: its source-validation accuracy was best at step 100" \
        in text
    assert "- convergence:" not in text  # a warning, not a run detail
