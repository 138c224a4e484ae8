"""DANN: domain-adversarial training through a gradient-reversal layer.

Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015; Ganin et al.,
"Domain-Adversarial Training of Neural Networks", JMLR 2016.

A domain discriminator ``D`` learns to tell the domain of a feature vector; the features reach it
through a gradient-reversal layer, so the encoder is pushed to make the domains indistinguishable:

    L_dann = (1 / |domains|) * sum_d  mean_{i in d} CE(D(GRL_lambda(f_i)), d)

The mean is taken per domain first, so the loss does not depend on the batch's source/target proportion.
With two domains this is the paper's binary loss (a 2-way softmax); with several source domains it is the
multi-class discriminator of multi-source DANN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .base import AlignmentMethod, AlignmentOutput
from .discriminator import DiscriminatorSettings
from .grl import GradientReversalLayer
from .registry import register_method
from .settings import check_weights


class DomainDiscriminator(nn.Sequential):
    """MLP ``F -> hidden -> ... -> num_domains`` with ReLU and dropout between layers.

    Shape: input ``(N, F)``, output logits ``(N, num_domains)``.
    """

    def __init__(self, in_features: int, hidden_size: int, num_layers: int, num_domains: int, dropout: float = 0.1):
        if num_layers < 1 or hidden_size < 1:
            raise ValueError("discriminator needs num_layers >= 1 and hidden_size >= 1, "
                             f"got {num_layers}, {hidden_size}")
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden_size
        layers.append(nn.Linear(width, num_domains))
        super().__init__(*layers)


def domain_balanced_cross_entropy(
    logits: torch.Tensor, domain: torch.Tensor, num_domains: int, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean over the domains present of each domain's (weighted) mean cross-entropy ``sum_i w_i ce_i / sum_i w_i``.

    Args:
        logits: ``(N, num_domains)``.
        domain: ``(N,)`` long domain ids.
        num_domains: number of classes of the discriminator.
        weight: ``(N,)`` non-negative row weights; ``None`` weighs rows equally.

    Returns:
        Scalar tensor.
    """
    per_row = F.cross_entropy(logits, domain, reduction="none")
    weight = torch.ones_like(per_row) if weight is None else weight.to(per_row.dtype)
    zeros = torch.zeros(num_domains, dtype=per_row.dtype, device=per_row.device)
    sums = zeros.index_add(0, domain, per_row * weight)
    norms = zeros.index_add(0, domain, weight)
    present = torch.bincount(domain, minlength=num_domains) > 0
    return (sums[present] / norms[present]).mean()


@dataclass
class DANNSettings:
    """DANN's settings (Ganin et al., JMLR 2016); the discriminator's are :class:`DiscriminatorSettings`, the
    gradient-reversal schedule's :class:`~hfadapt.methods.gradient_reversal.GRLSettings`.

    Raises:
        ValueError: from ``__post_init__`` on a negative or non-finite weight.
    """

    dann_weight: float = field(default=1.0, metadata={"help": "Weight of the DANN domain-discriminator loss."})

    def __post_init__(self):
        check_weights(self, "dann_weight")


@register_method
class DomainAdversarialLoss(AlignmentMethod):
    """DANN loss: GRL + domain discriminator over the head's input features.

    Shape:
        features ``(N, F)``, domain ``(N,)`` with ids ``0 .. num_domains - 1``; output a scalar loss and
        ``metrics = {"accuracy": discriminator accuracy, "lambda": current GRL coefficient}``.

    The GRL coefficient is set from outside with :meth:`set_grl_coefficient` (the trainer does it once per
    optimizer step); ``forward`` never changes it.
    """

    name = "dann"
    settings_class = DANNSettings
    adversarial = True

    def __init__(
        self,
        feature_dim: int,
        num_domains: int = 2,
        hidden_size: int = 256,
        num_layers: int = 2,
        dropout: float = 0.1,
    ):
        super().__init__(num_domains)
        self.grl = GradientReversalLayer(0.0)
        self.discriminator = DomainDiscriminator(feature_dim, hidden_size, num_layers, num_domains, dropout)

    @classmethod
    def from_config(cls, config, feature_dim: int, num_domains: int, num_classes: int) -> DomainAdversarialLoss:
        discriminator = config.settings_of(DiscriminatorSettings)
        return cls(
            feature_dim,
            num_domains,
            hidden_size=discriminator.discriminator_hidden_size,
            num_layers=discriminator.discriminator_num_layers,
            dropout=discriminator.discriminator_dropout,
        )

    def set_grl_coefficient(self, value: float) -> None:
        """Set the gradient-reversal coefficient ``lambda``."""
        self.grl.set_coefficient(value)

    @property
    def grl_coefficient(self) -> float:
        """The current gradient-reversal coefficient ``lambda``."""
        return self.grl.coefficient

    def discriminator_input(self, reversed_features: torch.Tensor, logits: torch.Tensor | None) -> torch.Tensor:
        """What the discriminator reads: the reversed features ``(N, F)`` (CDAN conditions them on predictions)."""
        return reversed_features

    def row_weights(self, logits: torch.Tensor | None, domain: torch.Tensor) -> torch.Tensor | None:
        """Per-row weights of the discriminator loss ``(N,)``; ``None``: equal (CDAN+E weighs by confidence)."""
        return None

    def forward(self, features: torch.Tensor, domain: torch.Tensor,
                logits: torch.Tensor | None = None) -> AlignmentOutput:
        disc_logits = self.discriminator(self.discriminator_input(self.grl(features), logits))
        loss = domain_balanced_cross_entropy(disc_logits, domain, self.num_domains, self.row_weights(logits, domain))
        with torch.no_grad():
            accuracy = (disc_logits.argmax(-1) == domain).float().mean()
        lam = torch.tensor(self.grl.coefficient, device=features.device)
        return AlignmentOutput(loss, {"accuracy": accuracy, "lambda": lam})
