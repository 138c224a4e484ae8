"""Deep CORAL: matching the second-order statistics of source and target features.

Sun & Saenko, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation", ECCV 2016 Workshops.

    L_coral = || C_s - C_t ||_F^2 / (4 d^2),   C = (X^T X - (1^T X)^T (1^T X) / n) / (n - 1)

with ``C_s, C_t`` the ``(d, d)`` feature covariances of the source and target rows of a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .base import AlignmentMethod, AlignmentOutput
from .registry import register_method
from .settings import check_weights


def covariance(x: torch.Tensor) -> torch.Tensor:
    """Unbiased covariance ``(F, F)`` of ``(N, F)`` rows; raises ``ValueError`` for fewer than 2 rows."""
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"a covariance needs (N >= 2, F) rows, got {tuple(x.shape)}")
    centred = x - x.mean(0, keepdim=True)
    return centred.T @ centred / (len(x) - 1)


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||C_s - C_t||_F^2 / (4 d^2)`` for source ``(N_s, d)`` and target ``(N_t, d)`` features; scalar."""
    if source.shape[1] != target.shape[1]:
        raise ValueError(f"CORAL needs features of one width, got {source.shape[1]} and {target.shape[1]}")
    d = source.shape[1]
    diff = covariance(source.float()) - covariance(target.float())
    return (diff * diff).sum() / (4 * d * d)


@dataclass
class CORALSettings:
    """Deep CORAL's settings (Sun & Saenko, ECCV 2016 workshops).

    Raises:
        ValueError: from ``__post_init__`` on a negative or non-finite weight.
    """

    coral_weight: float = field(
        default=0.1,
        metadata={"help": "Weight of the Deep CORAL loss (with alignment_balancing='gradient': its share of the "
                  "task's feature gradient)."},
    )

    def __post_init__(self):
        check_weights(self, "coral_weight")


@register_method
class CorrelationAlignmentLoss(AlignmentMethod):
    """Deep CORAL loss between the source rows (all source domains pooled) and the target rows.

    Shape: features ``(N, F)``, domain ``(N,)``; output a scalar. No trainable parameters.
    """

    name = "coral"
    settings_class = CORALSettings
    batch_statistic = True
    feature_scale_dependent = True

    @classmethod
    def from_config(cls, config, feature_dim: int, num_domains: int, num_classes: int) -> CorrelationAlignmentLoss:
        return cls(num_domains)

    def forward(self, features: torch.Tensor, domain: torch.Tensor,
                logits: torch.Tensor | None = None) -> AlignmentOutput:
        source, target = self.split(features, domain)
        return AlignmentOutput(coral_loss(source, target))
