"""MCC: minimum class confusion on the target predictions.

Jin, Wang, Long, Wang, "Minimum Class Confusion for Versatile Domain Adaptation", ECCV 2020.

With temperature-scaled predictions ``Y = softmax(Z / T)`` of the ``B`` target rows ``(B, C)``,
entropy-based weights ``w_i = B (1 + exp(-H(Y_i))) / sum_j (1 + exp(-H(Y_j)))``, the class correlation
``C = Y^T diag(w) Y`` ``(C, C)``, normalised per row ``C~_jk = C_jk / sum_k' C_jk'``:

    L_mcc = (sum_j sum_{k != j} C~_jk) / C

(the paper's category normalisation and mean over classes; ``T = 2.5`` in the paper). The entropy weights are
constants for the gradient (detached), as in the authors' code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .base import AlignmentMethod, AlignmentOutput
from .entropy import prediction_entropy
from .registry import register_method
from .settings import check_positive, check_weights


def minimum_class_confusion(logits: torch.Tensor, temperature: float = 2.5) -> torch.Tensor:
    """MCC loss of target logits ``(B, C)``; scalar in ``[0, (C - 1) / C]``. Raises ``ValueError`` if ``T <= 0``."""
    if temperature <= 0:
        raise ValueError(f"MCC temperature must be > 0, got {temperature}")
    batch, num_classes = logits.shape
    scaled = logits.float() / temperature
    y = torch.softmax(scaled, dim=-1)
    weight = 1.0 + torch.exp(-prediction_entropy(scaled).detach())
    weight = batch * weight / weight.sum()
    confusion = y.T @ (weight.unsqueeze(1) * y)
    confusion = confusion / confusion.sum(dim=1, keepdim=True)
    return (confusion.sum() - confusion.trace()) / num_classes


@dataclass
class MCCSettings:
    """Minimum class confusion's settings (Jin et al., ECCV 2020).

    Raises:
        ValueError: from ``__post_init__`` on a negative weight or a temperature <= 0.
    """

    mcc_weight: float = field(default=1.0, metadata={"help": "Weight of the minimum class confusion loss."})
    mcc_temperature: float = field(default=2.5, metadata={"help": "Temperature T of MCC's softmax (2.5 in the paper)."})

    def __post_init__(self):
        check_weights(self, "mcc_weight")
        check_positive(self, "mcc_temperature")


@register_method
class MinimumClassConfusionLoss(AlignmentMethod):
    """MCC loss on the target rows' logits. Shape: logits ``(N, C)``; output a scalar."""

    name = "mcc"
    settings_class = MCCSettings
    batch_statistic = True

    def __init__(self, num_domains: int = 2, temperature: float = 2.5):
        super().__init__(num_domains)
        self.temperature = float(temperature)

    @classmethod
    def from_config(cls, config, feature_dim: int, num_domains: int, num_classes: int) -> MinimumClassConfusionLoss:
        return cls(num_domains, config.settings_of(MCCSettings).mcc_temperature)

    def forward(self, features: torch.Tensor, domain: torch.Tensor,
                logits: torch.Tensor | None = None) -> AlignmentOutput:
        target = self.require_logits(logits, self.name)[domain == self.target_domain]
        return AlignmentOutput(minimum_class_confusion(target, self.temperature))
