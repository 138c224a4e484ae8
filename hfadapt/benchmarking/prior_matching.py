"""Target prior matching on the benchmark grid: each trained or fused model scored again after
:func:`~hfadapt.modeling.prior_matching.match_target_prior`, beside its own scores."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Mapping

import datasets
import torch
from transformers import DataCollatorWithPadding, PreTrainedModel

from ..data.mixing import label_ids, model_input_names
from ..data.splits import TransferSplits
from ..evaluation.scoring import score_classifier
from ..modeling.prior_matching import class_prior, match_target_prior
from ..trainer.config import AdaptConfig


def source_labels(splits: TransferSplits) -> list[int]:
    """The label ids of every source training row (all source domains of a multi-source split).

    Raises:
        ValueError: a source set without a label column.
    """
    parts = splits.source_train.values() if isinstance(splits.source_train, datasets.DatasetDict) \
        else [splits.source_train]
    return label_ids(parts)


def loaded(make_model: Callable[[], PreTrainedModel], weights: Mapping[str, torch.Tensor]) -> PreTrainedModel:
    """``make_model()`` with ``weights`` (a ``state_dict``) loaded.

    Raises:
        RuntimeError: weights that do not fit the model (``load_state_dict``'s error).
    """
    model = make_model()
    model.load_state_dict(weights)
    return model


def prior_matched_scores(model: PreTrainedModel, splits: TransferSplits, tokenizer, config: AdaptConfig) -> dict:
    """The scores of ``model`` (:func:`~hfadapt.evaluation.scoring.score_classifier`, in ``config``'s precision,
    with its label-free validators) before and after matching its predictions on the unlabelled target rows to the
    source training labels' class distribution; ``model`` itself is not changed.

    Returns:
        ``{"shift": [C floats], "unmatched": scores, "matched": scores}``.

    Raises:
        ValueError: a model whose logits come from no biased linear layer (an ensemble), or as
            :func:`~hfadapt.modeling.prior_matching.match_target_prior`.
    """
    collator = DataCollatorWithPadding(tokenizer)
    score = dict(validators=config.label_free_validators, max_rows=config.label_free_max_rows, bf16=config.bf16)
    model = copy.deepcopy(model).to(config.device).eval()
    unmatched = score_classifier(model, splits, collator, **score)
    prior = class_prior(source_labels(splits), len(splits.label_names))
    autocast = torch.autocast(config.device.type, dtype=torch.bfloat16) if config.bf16 else contextlib.nullcontext()
    with autocast:  # the logits the scores read
        shift = match_target_prior(model, splits.target_train, collator, model_input_names(model), prior)
    return {"shift": [round(float(s), 6) for s in shift], "unmatched": unmatched,
            "matched": score_classifier(model, splits, collator, **score)}
