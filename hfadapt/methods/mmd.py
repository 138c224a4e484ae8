"""MK-MMD: multi-kernel maximum mean discrepancy between source and target features.

Gretton, Borgwardt, Rasch, Schoelkopf, Smola, "A Kernel Two-Sample Test", JMLR 2012 (the estimator);
Long, Cao, Wang, Jordan, "Learning Transferable Features with Deep Adaptation Networks" (DAN), ICML 2015
(the multi-kernel loss for domain adaptation).

With Gaussian kernels ``k_u(x, y) = exp(-||x - y||^2 / (2 sigma_u^2))`` and equal weights
``beta_u = 1 / m`` (DAN constrains ``sum_u beta_u = 1``), the biased (V-statistic) estimator is

    MMD^2 = mean_ij k(s_i, s_j) + mean_ij k(t_i, t_j) - 2 mean_ij k(s_i, t_j),   k = sum_u beta_u k_u

It is exactly 0 when the two samples are identical and never negative. Bandwidths follow DAN's practice of
scaling a data-driven base: ``sigma_u^2 = multiplier_u * mean(||x - y||^2)`` over all pairs in the batch
(the base is detached, so no gradient flows through the bandwidth). Cost is O((N_s + N_t)^2 F).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from . import register_method
from .base import AlignmentMethod, AlignmentOutput


def multi_kernel_mmd(
    source: torch.Tensor,
    target: torch.Tensor,
    multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
    base_bandwidth: float | None = None,
) -> torch.Tensor:
    """Biased MK-MMD^2 estimate between two samples with a family of Gaussian kernels.

    Args:
        source: ``(N_s, F)`` features.
        target: ``(N_t, F)`` features, same ``F``.
        multipliers: kernel ``u`` uses ``sigma_u^2 = multipliers[u] * base``.
        base_bandwidth: fixed ``base`` (squared distance units); ``None`` uses the batch's mean pairwise
            squared distance.

    Returns:
        Scalar tensor ``MMD^2 >= 0``.

    Raises:
        ValueError: on empty samples, different feature widths or non-positive multipliers.
    """
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(f"MMD needs (N_s, F) and (N_t, F) features, got {tuple(source.shape)} and {tuple(target.shape)}")
    if len(source) == 0 or len(target) == 0:
        raise ValueError("MMD needs at least one source and one target row")
    if not multipliers or any(m <= 0 for m in multipliers):
        raise ValueError(f"kernel multipliers must be positive, got {list(multipliers)}")
    n_s = len(source)
    joint = torch.cat([source, target]).float()
    sq_dist = torch.cdist(joint, joint).pow(2)
    if base_bandwidth is None:
        n = len(joint)
        base = sq_dist.detach().sum() / max(n * n - n, 1)
        base = base.clamp_min(torch.finfo(base.dtype).tiny)
    else:
        base = torch.as_tensor(float(base_bandwidth), device=joint.device)
    kernel = sum(torch.exp(-sq_dist / (2.0 * m * base)) for m in multipliers) / len(multipliers)
    k_ss = kernel[:n_s, :n_s].mean()
    k_tt = kernel[n_s:, n_s:].mean()
    k_st = kernel[:n_s, n_s:].mean()
    return (k_ss + k_tt - 2.0 * k_st).clamp_min(0.0)


@register_method
class MultiKernelMMDLoss(AlignmentMethod):
    """MK-MMD loss between all source rows and the target rows of a batch (no trainable parameters).

    Shape: features ``(N, F)``, domain ``(N,)``; output a scalar loss. With several source domains the
    sources are pooled into one sample.
    """

    name = "mmd"

    def __init__(self, num_domains: int = 2, multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0)):
        super().__init__(num_domains)
        self.multipliers = tuple(float(m) for m in multipliers)

    @classmethod
    def from_config(cls, config, feature_dim: int, num_domains: int) -> MultiKernelMMDLoss:
        return cls(num_domains, config.mmd_kernel_multipliers)

    def forward(self, features: torch.Tensor, domain: torch.Tensor) -> AlignmentOutput:
        source, target = self.split(features, domain)
        return AlignmentOutput(multi_kernel_mmd(source, target, self.multipliers))

    def extra_repr(self) -> str:
        return f"multipliers={self.multipliers}"
