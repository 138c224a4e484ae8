"""Finding the features an alignment loss reads: the input of the model's classification head."""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import torch
from torch import nn

FEATURE_SOURCES = ("head_input", "mean_pooled")
"""What alignment heads can read: the classification head's input, or the mask-aware mean of the last hidden state."""

HEAD_MODULE_NAMES = ("classifier", "score", "logits_proj", "head", "fc")
"""Attribute names under which transformers' ``*ForSequenceClassification`` / ``*ForImageClassification``
models keep their classification head, tried in this order."""


def unwrap_peft(model: nn.Module) -> nn.Module:
    """The underlying transformers model of a ``peft.PeftModel`` (the model itself otherwise)."""
    get_base_model = getattr(model, "get_base_model", None)
    return get_base_model() if callable(get_base_model) else model


def find_classification_head(model: nn.Module) -> tuple[str, nn.Module]:
    """Return ``(name, module)`` of the classification head of a transformers model (PEFT-wrapped or not).

    Raises:
        ValueError: if none of :data:`HEAD_MODULE_NAMES` is a submodule, naming the model class.
    """
    base = unwrap_peft(model)
    for name in HEAD_MODULE_NAMES:
        module = getattr(base, name, None)
        if isinstance(module, nn.Module):
            return name, module
    raise ValueError(
        f"cannot find the classification head of {type(base).__name__}: none of {HEAD_MODULE_NAMES} is a submodule. "
        "hfadapt adapts AutoModelForSequenceClassification / AutoModelForImageClassification models."
    )


def as_feature_matrix(x: torch.Tensor) -> torch.Tensor:
    """Bring a head's input to ``(N, F)``: a token sequence ``(N, L, H)`` gives its first token ``(N, H)``
    (the [CLS] position RoBERTa-style heads read), any other shape is flattened after the batch dimension."""
    if x.ndim == 3:
        return x[:, 0]
    return x.flatten(1) if x.ndim > 2 else x


def mean_pooled(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Mask-aware mean over positions: ``(N, L, H)`` and ``(N, L)`` -> ``(N, H)``."""
    if attention_mask is None:
        return hidden.mean(1)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)


class HeadInputCapture:
    """Forward pre-hook that keeps the tensor the classification head receives on its next call.

    >>> capture = HeadInputCapture(head)           # doctest: +SKIP
    >>> logits = model(**batch).logits              # doctest: +SKIP
    >>> features = capture.pop()                    # (N, F)  # doctest: +SKIP
    """

    def __init__(self, head: nn.Module):
        self._value: torch.Tensor | None = None
        self.enabled = False
        self._handle = head.register_forward_pre_hook(self._hook)

    def _hook(self, module: nn.Module, args: tuple) -> None:
        if self.enabled and args:
            self._value = args[0]

    def pop(self) -> torch.Tensor:
        """The captured head input as ``(N, F)``; raises ``RuntimeError`` if the head did not run."""
        value, self._value = self._value, None
        if value is None:
            raise RuntimeError("the classification head was not called with a tensor input during the forward pass")
        return as_feature_matrix(value)

    def remove(self) -> None:
        """Detach the hook from the head."""
        self._handle.remove()


class HeadInputReader(nn.Module):
    """``features_and_logits`` for a plain classification model (not an :class:`~hfadapt.modeling.model.AdaptModel`):
    the
    input of its classification head (what ``AdaptModel`` reads with ``feature_source="head_input"``) and its
    logits, so :func:`dataset_predictions` and the validators can score a model trained with ``transformers.Trainer``.

    Raises:
        ValueError: if the model has no classification head :func:`find_classification_head` knows.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        find_classification_head(model)  # fail now on a model without one
        self.model = model

    @torch.no_grad()
    def features_and_logits(self, **inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, F)`` head inputs and ``(N, C)`` logits of a batch of model inputs (no gradient)."""
        capture = HeadInputCapture(find_classification_head(self.model)[1])
        capture.enabled = True
        try:
            logits = self.model(**inputs).logits
            return capture.pop(), logits
        finally:
            capture.remove()


def row_sample(dataset: datasets.Dataset, max_rows: int, seed: int = 0) -> datasets.Dataset:
    """At most ``max_rows`` rows of ``dataset`` drawn at random (seeded, kept in dataset order; a lazy transform is
    kept). Data files are often sorted by label (the Amazon reviews are: all negative, then all positive), so the
    first rows are no sample of a domain."""
    if len(dataset) <= max_rows:
        return dataset
    generator = torch.Generator().manual_seed(seed)
    return dataset.select(sorted(torch.randperm(len(dataset), generator=generator)[:max_rows].tolist()))


def dataset_features(adapt_model, dataset: datasets.Dataset, collator, model_inputs: Sequence[str],
                     max_rows: int = 256, batch_size: int = 32) -> torch.Tensor:
    """The ``(min(len, max_rows), F)`` alignment features of the first rows of ``dataset``, in eval mode (pass a
    :func:`row_sample` for a random sample).

    ``adapt_model`` is an :class:`~hfadapt.modeling.model.AdaptModel`; its train/eval mode is restored afterwards.
    """
    return dataset_predictions(adapt_model, dataset, collator, model_inputs, max_rows, batch_size)[0]


@torch.no_grad()
def dataset_predictions(adapt_model, dataset: datasets.Dataset, collator, model_inputs: Sequence[str],
                        max_rows: int = 256, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``(n, F)`` and logits ``(n, C)`` (float32, CPU) of the first ``n = min(len, max_rows)`` rows of
    ``dataset`` in eval mode, reading only the ``model_inputs`` columns (never labels)."""
    columns = list(model_inputs)
    rows = [{k: v for k, v in dataset[i].items() if k in columns} for i in range(min(len(dataset), max_rows))]
    device = next(adapt_model.parameters()).device
    was_training = adapt_model.training
    adapt_model.eval()
    try:
        features, logits = [], []
        for start in range(0, len(rows), batch_size):
            batch = collator([rows[i] for i in range(start, min(start + batch_size, len(rows)))])
            batch = {k: v.to(device) for k, v in batch.items() if k in columns}
            feats, batch_logits = adapt_model.features_and_logits(**batch)
            features.append(feats.float().cpu())
            logits.append(batch_logits.float().cpu())
        return torch.cat(features), torch.cat(logits)
    finally:
        adapt_model.train(was_training)
