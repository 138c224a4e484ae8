"""What a run writes where: file and folder names shared by the run driver (:mod:`hfadapt.evaluation.experiment`), the
report
(:mod:`hfadapt.evaluation.report`) and the command line, in one module that imports neither."""

from __future__ import annotations

from ..methods import parse_method_names
from .negative_transfer import TARGET_SUPERVISED

RESULTS_FILE = "results.json"
"""In the output folder: every run's scores, the negative-transfer warnings and the settings."""
REPORT_FILE = "report.md"
"""In the output folder: the markdown report ``hfadapt report`` writes."""
ANALYSIS_FILE = "analysis.pt"
"""Per run folder: features of source-validation and target-test rows before/after training, with their labels."""
LOG_HISTORY_FILE = "log_history.json"
"""Per run folder: ``trainer.state.log_history`` (every logged loss component and evaluation)."""
SOURCE_EVAL = "source_val"
"""Name of the source-validation set among the evaluation sets (metrics ``eval_source_val_*``)."""
TARGET_EVAL = "target_test"
"""Name of the labelled target test set among the evaluation sets (metrics ``eval_target_test_*``)."""
TAPT_ONLY = "tapt"
"""The ``method`` a run records for ``method="none"`` with ``tapt_steps > 0``: task-adaptive pretraining on the
target rows, then plain source fine-tuning (Gururangan et al., ACL 2020), which is not the source-only baseline."""


def run_label(method: str, tapt_steps: int = 0) -> str:
    """The ``method`` a run's results record: the method spec, or :data:`TAPT_ONLY` for ``"none"`` with TAPT steps.

    Raises:
        ValueError: for a method spec that names no registered method.
    """
    return TAPT_ONLY if tapt_steps and not parse_method_names(method) else method


def run_name(method: str) -> str:
    """Folder name of a run: ``source_only`` for ``"none"``, ``target_supervised`` for the target-supervised
    reference, ``tapt`` for :data:`TAPT_ONLY`, else the method spec (``dann``, ``dann+mmd``).

    Raises:
        ValueError: for a method spec that names no registered method.
    """
    if method == TARGET_SUPERVISED:
        return "target_supervised"
    if method == TAPT_ONLY:
        return TAPT_ONLY
    return "source_only" if not parse_method_names(method) else method
