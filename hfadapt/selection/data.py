"""What a label-free validator sees."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ValidationData:
    """Features and predictions of one model on labelled source-validation rows and unlabelled target rows.

    Attributes:
        source_features: ``(N_s, F)`` float, the features the classifier reads, source validation rows.
        source_probs: ``(N_s, C)`` class probabilities on those rows.
        source_labels: ``(N_s,)`` long, their labels.
        target_features: ``(N_t, F)`` float, target rows (unlabelled: no target label is ever passed).
        target_probs: ``(N_t, C)`` class probabilities on the target rows.
        derived: what one validator computed from these tensors that another reuses in the same evaluation (IWV and
            DEV share one density-ratio fit); filled lazily, not part of equality.

    Raises:
        ValueError: on empty domains, mismatched row counts or class counts, or probabilities that do not sum to 1.
    """

    source_features: torch.Tensor
    source_probs: torch.Tensor
    source_labels: torch.Tensor
    target_features: torch.Tensor
    target_probs: torch.Tensor
    derived: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        n_s, n_t = len(self.source_probs), len(self.target_probs)
        if n_s == 0 or n_t == 0:
            raise ValueError(f"validation needs source and target rows, got {n_s} and {n_t}")
        if len(self.source_features) != n_s or len(self.source_labels) != n_s or len(self.target_features) != n_t:
            raise ValueError("features, probabilities and labels must have one row per example in each domain")
        if self.source_probs.shape[1] != self.target_probs.shape[1]:
            raise ValueError(f"source and target predictions have {self.source_probs.shape[1]} and "
                             f"{self.target_probs.shape[1]} classes")
        for name in ("source_probs", "target_probs"):
            total = getattr(self, name).double().sum(-1)
            if not torch.allclose(total, torch.ones_like(total), atol=1e-3):
                raise ValueError(f"{name} must be probabilities (rows summing to 1); pass softmax(logits)")

    @classmethod
    def from_logits(cls, source_features, source_logits, source_labels, target_features,
                    target_logits) -> ValidationData:
        """Build from logits ``(N, C)`` (softmax applied here)."""
        return cls(source_features.float(), source_logits.float().softmax(-1), source_labels.long(),
                   target_features.float(), target_logits.float().softmax(-1))
