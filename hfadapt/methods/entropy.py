"""Entropy minimisation and information maximisation on the target predictions.

- ``entropy``: Grandvalet & Bengio, "Semi-supervised Learning by Entropy Minimization", NeurIPS 2004:
  ``L = mean_i H(p_i)`` over target rows, ``p_i = softmax(z_i)``, ``H(p) = -sum_c p_c log p_c`` (nats).
- ``im``: information maximisation (Hu et al., ICML 2017; as used by SHOT, Liang et al., ICML 2020):
  ``L = mean_i H(p_i) - H(mean_i p_i)``: confident per-row predictions that stay diverse over the batch
  (the second term keeps all target rows from collapsing onto one class).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .base import AlignmentMethod, AlignmentOutput
from .registry import register_method
from .settings import check_weights


def prediction_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of ``softmax(logits)`` per row: ``(N, C)`` -> ``(N,)``."""
    log_p = torch.log_softmax(logits.float(), dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


def information_maximisation(logits: torch.Tensor) -> torch.Tensor:
    """``mean_i H(p_i) - H(mean_i p_i)`` for ``(N, C)`` logits; scalar, ``>= -log C``."""
    p = torch.softmax(logits.float(), dim=-1)
    mean_p = p.mean(0)
    marginal_entropy = -(mean_p * torch.log(mean_p.clamp_min(1e-12))).sum()
    return prediction_entropy(logits).mean() - marginal_entropy


@dataclass
class EntropySettings:
    """Settings of target entropy minimisation (Grandvalet & Bengio, NeurIPS 2004).

    Raises:
        ValueError: from ``__post_init__`` on a negative or non-finite weight.
    """

    entropy_weight: float = field(default=0.1, metadata={"help": "Weight of target entropy minimisation."})

    def __post_init__(self):
        check_weights(self, "entropy_weight")


@dataclass
class IMSettings:
    """Settings of target information maximisation (Shi & Sha, ICML 2012; Liang et al., ICML 2020).

    Raises:
        ValueError: from ``__post_init__`` on a negative or non-finite weight.
    """

    im_weight: float = field(default=0.1, metadata={"help": "Weight of target information maximisation."})

    def __post_init__(self):
        check_weights(self, "im_weight")


class _TargetPredictionLoss(AlignmentMethod):
    """Base of losses computed on the target rows' logits only."""

    @classmethod
    def from_config(cls, config, feature_dim: int, num_domains: int, num_classes: int):
        return cls(num_domains)

    def target_logits(self, domain: torch.Tensor, logits: torch.Tensor | None) -> torch.Tensor:
        return self.require_logits(logits, self.name)[domain == self.target_domain]


@register_method
class EntropyMinimisationLoss(_TargetPredictionLoss):
    """Mean prediction entropy of the target rows. Shape: logits ``(N, C)``; output a scalar in ``[0, log C]``."""

    name = "entropy"
    settings_class = EntropySettings

    def forward(self, features: torch.Tensor, domain: torch.Tensor,
                logits: torch.Tensor | None = None) -> AlignmentOutput:
        return AlignmentOutput(prediction_entropy(self.target_logits(domain, logits)).mean())


@register_method
class InformationMaximisationLoss(_TargetPredictionLoss):
    """Information maximisation on the target rows. Shape: logits ``(N, C)``; output a scalar."""

    name = "im"
    settings_class = IMSettings
    batch_statistic = True

    def forward(self, features: torch.Tensor, domain: torch.Tensor,
                logits: torch.Tensor | None = None) -> AlignmentOutput:
        return AlignmentOutput(information_maximisation(self.target_logits(domain, logits)))
