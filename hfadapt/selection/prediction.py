"""Validators on the target predictions alone: entropy and information maximisation, and source accuracy."""

from __future__ import annotations

import torch

from .data import ValidationData
from .registry import register_validator


def mean_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Mean Shannon entropy (nats) of the rows of ``(N, C)`` probabilities."""
    return -(probs * probs.clamp_min(1e-12).log()).sum(-1).mean()


@register_validator("entropy")
def entropy_score(data: ValidationData) -> float:
    """``-mean_i H(p_i)`` over target rows: confident target predictions score higher (range ``[-log C, 0]``)."""
    return -float(mean_entropy(data.target_probs))


@register_validator("im")
def information_maximisation_score(data: ValidationData) -> float:
    """``H(mean_i p_i) - mean_i H(p_i)`` on the target (Hu et al., ICML 2017; as a validator in Musgrave et al.
    2021): confident *and* diverse predictions score higher (range ``[0, log C]``); a model that maps every
    target row to one class scores 0."""
    marginal = data.target_probs.mean(0, keepdim=True)
    return float(mean_entropy(marginal) - mean_entropy(data.target_probs))


@register_validator("source_val")
def source_accuracy(data: ValidationData) -> float:
    """Accuracy on the labelled source-validation rows (ignores the target: the domain-blind baseline)."""
    return float((data.source_probs.argmax(-1) == data.source_labels).float().mean())
