"""Finding the features an alignment loss reads: the input of the model's classification head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .heads import find_classification_head

FEATURE_SOURCES = ("head_input", "mean_pooled")
"""What alignment heads can read: the classification head's input, or the mask-aware mean of the last hidden state."""

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
    the input of its classification head (what ``AdaptModel`` reads with ``feature_source="head_input"``) and its
    logits, so :func:`dataset_predictions` and the validators can score a model trained with ``transformers.Trainer``.
    With ``heads`` (several heads the model's forward calls, e.g. the members' of a prediction ensemble) the features
    are their inputs side by side, ``(N, F_1 + ... + F_K)``.

    Raises:
        ValueError: if ``heads`` is not given and the model has no classification head
            :func:`find_classification_head` knows.
    """

    def __init__(self, model: nn.Module, heads: Sequence[nn.Module] | None = None):
        super().__init__()
        self.model = model
        self._heads = list(heads) if heads is not None else [find_classification_head(model)[1]]

    @torch.no_grad()
    def features_and_logits(self, **inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, F)`` head inputs and ``(N, C)`` logits of a batch of model inputs (no gradient)."""
        captures = [HeadInputCapture(head) for head in self._heads]
        for capture in captures:
            capture.enabled = True
        try:
            logits = self.model(**inputs).logits
            return torch.cat([capture.pop() for capture in captures], dim=1), logits
        finally:
            for capture in captures:
                capture.remove()
