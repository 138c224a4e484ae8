"""Scoring a model with label-free validators at every evaluation, so the Trainer can keep the best checkpoint by
them without target labels."""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import torch

from ..data.sampler import row_sample
from ..modeling.inference import dataset_predictions
from .data import ValidationData
from .registry import VALIDATORS, min_rows, validator_score


class LabelFreeValidation:
    """Scores of label-free validators for a model, from its features and predictions on labelled
    *source-validation* rows and unlabelled *target* rows; target labels are never read (only the model-input
    columns of the target set are loaded).

    :class:`~hfadapt.AdaptTrainer` builds one when ``AdaptConfig.label_free_validators`` is set and adds
    ``eval_<validator>`` to the metrics (and the log) of every evaluation; with
    ``metric_for_best_model="<validator>"`` (every validator is higher-is-better) and ``load_best_model_at_end``,
    the Trainer keeps the checkpoint the validator prefers: model selection without target labels.

    Args:
        source_val: labelled source-validation rows (model inputs and ``label``/``labels``).
        target: unlabelled target rows (model inputs; any label column is ignored).
        collator: the trainer's data collator; model_inputs: the model's input column names.
        validators: names from :data:`hfadapt.selection.VALIDATORS`.
        max_rows: rows used from each set (a seeded random sample).

    Raises:
        ValueError: on an unknown validator name, a source set without labels, or fewer rows than a validator needs
            (:func:`hfadapt.selection.min_rows`).
    """

    def __init__(self, source_val: datasets.Dataset, target: datasets.Dataset, collator, model_inputs: Sequence[str],
                 validators: Sequence[str], max_rows: int = 1000):
        unknown = [v for v in validators if v not in VALIDATORS]
        if unknown:
            raise ValueError(f"unknown validators {unknown}; registered: {sorted(VALIDATORS)}")
        label_column = next((c for c in ("labels", "label") if c in source_val.column_names), None)
        if label_column is None:
            raise ValueError("label-free validation needs a labelled source-validation set (a 'label' column)")
        source_val, target = row_sample(source_val, max_rows), row_sample(target, max_rows)  # files sort by label
        for name in validators:
            need_source, need_target = min_rows(name)
            if len(source_val) < need_source or len(target) < need_target:
                raise ValueError(f"validator {name!r} needs at least {need_source} source-validation and "
                                 f"{need_target} target rows, got {len(source_val)} and {len(target)}")
        self.source_val, self.target, self.collator = source_val, target, collator
        self.model_inputs, self.validators, self.max_rows = list(model_inputs), list(validators), max_rows
        self.source_labels = torch.tensor(source_val[label_column][:max_rows])
        self.history: list[dict[str, float]] = []
        """``{"step", <validator>: score}`` of every evaluation, in order."""

    def scores(self, adapt_model, step: int | None = None) -> dict[str, float]:
        """Every validator's score of ``adapt_model`` (an :class:`~hfadapt.modeling.model.AdaptModel`) now; recorded in
        :attr:`history` with ``step``."""
        source = dataset_predictions(adapt_model, self.source_val, self.collator, self.model_inputs, self.max_rows)
        target = dataset_predictions(adapt_model, self.target, self.collator, self.model_inputs, self.max_rows)
        data = ValidationData.from_logits(source[0], source[1], self.source_labels, target[0], target[1])
        scores = {name: validator_score(name, data) for name in self.validators}
        self.history.append({"step": step, **scores})
        return scores
