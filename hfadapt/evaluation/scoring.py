"""Scoring a trained classifier without training it: a fused model (an ensemble, a soup, a WiSE-FT interpolation)
gets the scores a run reports, on the same splits."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from transformers import EvalPrediction, PreTrainedModel

from ..data.mixing import model_input_names
from ..data.splits import TransferSplits
from ..fusion.ensemble import EnsembleForClassification
from ..modeling.features import HeadInputReader
from ..modeling.heads import find_classification_head
from ..modeling.inference import dataset_predictions
from ..selection.selection import LabelFreeValidation
from .metrics import classification_metrics


def head_input_reader(model: PreTrainedModel) -> HeadInputReader:
    """The features and logits the validators read of ``model``: its classification head's input, or for a
    :class:`~hfadapt.fusion.EnsembleForClassification` its members' head inputs side by side.

    Raises:
        ValueError: a model (or member) without a classification head
            :func:`~hfadapt.modeling.heads.find_classification_head` knows.
    """
    if isinstance(model, EnsembleForClassification):
        return HeadInputReader(model, [find_classification_head(member)[1] for member in model.members])
    return HeadInputReader(model)


def _accuracy_and_f1(reader: HeadInputReader, rows, collator, model_inputs: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro-F1 (in [0, 1]) of the reader's model on every row of ``rows`` (labelled)."""
    logits = dataset_predictions(reader, rows, collator, model_inputs, max_rows=len(rows))[1]
    label_column = "labels" if "labels" in rows.column_names else "label"
    metrics = classification_metrics(EvalPrediction(predictions=logits.numpy(), label_ids=rows[label_column]))
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}


def source_val_accuracy(model: PreTrainedModel, splits: TransferSplits, collator,
                        model_inputs: Sequence[str] | None = None, bf16: bool = False) -> float:
    """Accuracy (in [0, 1]) of ``model`` on every row of ``splits.source_val``: the held-out score a greedy soup
    (:func:`~hfadapt.fusion.greedy_soup`) chooses its ingredients by. Arguments as :func:`score_classifier`'s.

    Raises:
        ValueError: a model without a classification head.
    """
    reader = head_input_reader(model)
    with _autocast(model, bf16):
        return _accuracy_and_f1(reader, splits.source_val, collator, _model_inputs(model, model_inputs))["accuracy"]


def _model_inputs(model: PreTrainedModel, model_inputs: Sequence[str] | None) -> Sequence[str]:
    """``model_inputs``, or the input columns ``model`` reads (an ensemble's: its members')."""
    if model_inputs is not None:
        return model_inputs
    return model_input_names(model.members[0] if isinstance(model, EnsembleForClassification) else model)


def _autocast(model: PreTrainedModel, bf16: bool):
    """bf16 autocast on ``model``'s device, or no change."""
    device = next(model.parameters()).device
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def score_classifier(model: PreTrainedModel, splits: TransferSplits, collator,
                     model_inputs: Sequence[str] | None = None, validators: Sequence[str] = (), max_rows: int = 1000,
                     bf16: bool = False) -> dict:
    """What :func:`~hfadapt.evaluation.experiment.train_and_evaluate` reports of a run, for a model trained
    elsewhere: accuracy on source validation, accuracy and macro-F1 on the target test set (all in [0, 1]), and the
    label-free ``validators`` (``{name: score}``, higher is better) from source validation and the unlabelled
    target rows (``splits.target_train``, at most ``max_rows`` of each, the sample
    :class:`~hfadapt.AdaptTrainer` scores). Target labels reach the two target metrics only.

    Args:
        model: a sequence or image classifier, or a :class:`~hfadapt.fusion.EnsembleForClassification` (its
            features for the validators: the members' head inputs side by side).
        collator: pads a list of rows into a batch (the trainer's: ``DataCollatorWithPadding`` for text).
        model_inputs: the input columns the model reads (default: its ``forward``'s; an ensemble's are its
            members').
        bf16: score under bf16 autocast, as a run trained with ``bf16`` evaluates.

    Returns:
        ``{"source_val_accuracy", "target_accuracy", "target_macro_f1"}`` (the two target metrics only when
        ``splits.target_test`` has labels), plus ``"validators"`` when ``validators`` are given.

    Raises:
        ValueError: a model without a classification head, or too few rows for a validator
            (:class:`~hfadapt.selection.selection.LabelFreeValidation`).
    """
    reader = head_input_reader(model)
    model_inputs = _model_inputs(model, model_inputs)
    scores = {"source_val_accuracy": source_val_accuracy(model, splits, collator, model_inputs, bf16)}
    with _autocast(model, bf16):
        if splits.target_test is not None:
            target = _accuracy_and_f1(reader, splits.target_test, collator, model_inputs)
            scores |= {"target_accuracy": target["accuracy"], "target_macro_f1": target["macro_f1"]}
    if validators:
        validation = LabelFreeValidation(splits.source_val, splits.target_train, collator, model_inputs, validators,
                                         max_rows)
        scores["validators"] = validation.scores(reader)
    return scores
