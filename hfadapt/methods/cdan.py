"""CDAN and CDAN+E: conditional domain-adversarial training.

Long, Cao, Wang, Jordan, "Conditional Adversarial Domain Adaptation", NeurIPS 2018.

The domain discriminator reads the multilinear map of features ``f (N, F)`` and class predictions
``g = softmax(z) (N, C)`` (detached, as in the authors' code): ``h = f (x) g``, flattened to ``(N, F * C)``.
When ``F * C`` exceeds ``max_multilinear_dim``, the randomized map ``h = (R_f f) * (R_g g) / sqrt(d)`` with fixed
Gaussian ``R_f (F, d)``, ``R_g (C, d)`` is used instead (section 3.2 of the paper). Features reach the map
through a gradient-reversal layer, as in DANN.

CDAN+E (``entropy_conditioning=True``) weights each row by ``w = 1 + exp(-H(g))``, so confident predictions count
more; the weights are normalised within each domain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .dann import DomainAdversarialLoss
from .discriminator import DiscriminatorSettings
from .entropy import prediction_entropy
from .registry import register_method
from .settings import check_weights


def multilinear_map(features: torch.Tensor, predictions: torch.Tensor) -> torch.Tensor:
    """Outer product per row: ``(N, F)`` and ``(N, C)`` -> ``(N, C * F)`` with entry ``[c * F + f] = g_c * f_f``."""
    return torch.bmm(predictions.unsqueeze(2), features.unsqueeze(1)).flatten(1)


@dataclass
class CDANSettings:
    """CDAN's settings (Long et al., NeurIPS 2018); the discriminator and the gradient reversal are DANN's.

    Raises:
        ValueError: from ``__post_init__`` on a negative or non-finite weight.
    """

    cdan_weight: float = field(default=1.0, metadata={"help": "Weight of the CDAN conditional discriminator loss."})
    cdan_entropy_conditioning: bool = field(
        default=False, metadata={"help": "CDAN+E: weight discriminator rows by 1 + exp(-entropy of the prediction)."}
    )

    def __post_init__(self):
        check_weights(self, "cdan_weight")


@register_method
class ConditionalDomainAdversarialLoss(DomainAdversarialLoss):
    """CDAN (and CDAN+E) loss. Shape: features ``(N, F)``, domain ``(N,)``, logits ``(N, C)``; output a scalar
    and ``metrics = {"accuracy", "lambda"}`` as for DANN.

    Args:
        feature_dim: ``F``.
        num_classes: ``C``, the classifier's number of labels.
        entropy_conditioning: CDAN+E row weights.
        max_multilinear_dim: above this ``F * C``, use the randomized map of width ``randomized_dim``.
    """

    name = "cdan"
    settings_class = CDANSettings

    def __init__(
        self,
        feature_dim: int,
        num_classes: int,
        num_domains: int = 2,
        hidden_size: int = 256,
        num_layers: int = 2,
        dropout: float = 0.1,
        entropy_conditioning: bool = False,
        max_multilinear_dim: int = 4096,
        randomized_dim: int = 1024,
    ):
        randomized = feature_dim * num_classes > max_multilinear_dim
        input_dim = randomized_dim if randomized else feature_dim * num_classes
        super().__init__(input_dim, num_domains, hidden_size, num_layers, dropout)
        self.entropy_conditioning = entropy_conditioning
        self.randomized = randomized
        if randomized:
            generator = torch.Generator().manual_seed(0)
            self.register_buffer("random_f", torch.randn(feature_dim, randomized_dim, generator=generator),
                                 persistent=False)
            self.register_buffer("random_g", torch.randn(num_classes, randomized_dim, generator=generator),
                                 persistent=False)

    @classmethod
    def from_config(cls, config, feature_dim: int, num_domains: int,
                    num_classes: int) -> ConditionalDomainAdversarialLoss:
        discriminator = config.settings_of(DiscriminatorSettings)
        return cls(
            feature_dim,
            num_classes,
            num_domains,
            hidden_size=discriminator.discriminator_hidden_size,
            num_layers=discriminator.discriminator_num_layers,
            dropout=discriminator.discriminator_dropout,
            entropy_conditioning=config.settings_of(CDANSettings).cdan_entropy_conditioning,
        )

    def discriminator_input(self, reversed_features: torch.Tensor, logits: torch.Tensor | None) -> torch.Tensor:
        """Multilinear (or randomized multilinear) map of the reversed features and the detached predictions."""
        predictions = torch.softmax(self.require_logits(logits, self.name).detach().float(), dim=-1)
        predictions = predictions.to(reversed_features.dtype)
        if self.randomized:
            return (reversed_features @ self.random_f) * (predictions @ self.random_g) / self.random_f.shape[1] ** 0.5
        return multilinear_map(reversed_features, predictions)

    def row_weights(self, logits: torch.Tensor | None, domain: torch.Tensor) -> torch.Tensor | None:
        """CDAN+E: ``1 + exp(-H(g))`` per row (normalised within each domain by the loss); CDAN: equal."""
        if not self.entropy_conditioning:
            return None
        return 1.0 + torch.exp(-prediction_entropy(self.require_logits(logits, self.name).detach()))
