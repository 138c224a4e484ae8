"""JAN: joint maximum mean discrepancy over features and predictions.

Long, Zhu, Wang, Jordan, "Deep Transfer Learning with Joint Adaptation Networks", ICML 2017.

JMMD is the MMD under the product kernel of the layers it aligns: here the features ``f`` (multi-kernel
Gaussian with data-driven bandwidths, as for MK-MMD) and the class predictions ``g = softmax(z)`` (one Gaussian
kernel of fixed bandwidth ``sigma = 0.92``, the value of the authors' code for the softmax layer):

    K = K_f (.) K_g,   JMMD^2 = MMD^2 estimated from K (unbiased by default)

so source and target are aligned in the joint distribution of features and predicted labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .base import AlignmentOutput
from .mmd import MultiKernelMMDLoss, check_estimate, gaussian_kernel_matrix, mmd_from_kernel
from .registry import register_method
from .settings import check_weights

PREDICTION_SIGMA = 0.92


def joint_mmd(
    source: torch.Tensor,
    target: torch.Tensor,
    source_logits: torch.Tensor,
    target_logits: torch.Tensor,
    multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
    prediction_sigma: float = PREDICTION_SIGMA,
    estimator: str = "unbiased",
) -> torch.Tensor:
    """JMMD^2 between (features, predictions) of source ``(N_s, F), (N_s, C)`` and target ``(N_t, F), (N_t, C)``.

    Raises:
        ValueError: on mismatched shapes, too few rows for the estimator, an unknown estimator or non-positive
            kernel multipliers.
    """
    if len(source) != len(source_logits) or len(target) != len(target_logits):
        raise ValueError("JAN needs one row of logits per feature row")
    if estimator == "linear":
        raise ValueError("JAN has no linear-time estimate here: use mmd_estimator 'unbiased' or 'biased' with jan")
    check_estimate(len(source), len(target), multipliers, estimator, what="JMMD")
    k_features = gaussian_kernel_matrix(torch.cat([source, target]), multipliers)
    predictions = torch.softmax(torch.cat([source_logits, target_logits]).float(), dim=-1)
    k_predictions = gaussian_kernel_matrix(predictions, [1.0], base_bandwidth=prediction_sigma**2)
    return mmd_from_kernel(k_features * k_predictions, len(source), estimator)


@dataclass
class JANSettings:
    """JAN's own settings (Long et al., ICML 2017); its kernels and estimator are MK-MMD's
    (:class:`~hfadapt.methods.mmd.MMDSettings`).

    Raises:
        ValueError: from ``__post_init__`` on a negative or non-finite weight.
    """

    jan_weight: float = field(
        default=0.1,
        metadata={"help": "Weight of the JAN joint MMD loss, which uses the MMD kernel settings (with "
                  "alignment_balancing='gradient': its share of the task's feature gradient)."},
    )

    def __post_init__(self):
        check_weights(self, "jan_weight")


@register_method
class JointMMDLoss(MultiKernelMMDLoss):
    """JAN loss between source rows (all source domains pooled) and target rows; the feature kernels and the
    estimator are those of :class:`~hfadapt.methods.mmd.MultiKernelMMDLoss`, set by its
    :class:`~hfadapt.methods.mmd.MMDSettings`.

    Shape: features ``(N, F)``, domain ``(N,)``, logits ``(N, C)``; output a scalar. No trainable parameters.
    """

    name = "jan"
    settings_class = JANSettings
    config_prefixes = ("mmd",)

    def forward(self, features: torch.Tensor, domain: torch.Tensor,
                logits: torch.Tensor | None = None) -> AlignmentOutput:
        logits = self.require_logits(logits, self.name)
        is_target = domain == self.target_domain
        return AlignmentOutput(
            joint_mmd(features[~is_target], features[is_target], logits[~is_target], logits[is_target],
                      self.multipliers, estimator=self.estimator)
        )
