"""Weights ``lambda_d`` of several source domains in the task loss, set from how close each is to the target.

Multi-source domain adaptation (e.g. books + dvd -> electronics) trains on ``L = sum_d lambda_d L_d``. A source
whose features lie closer to the target's should count more (the intuition of the multi-source bounds of
Mansour, Mohri, Rostamizadeh, NeurIPS 2008, and of MDAN's domain weighting, Zhao et al., NeurIPS 2018). The
rule here is simple and scale-free:

    lambda_d = softmax_d(-D_d / mean_k D_k),   D_d = MK-MMD^2_biased(source d, target)

measured once, before training, on the features of up to ``n`` rows per domain under the initial model, with
one shared kernel bandwidth (the pooled sample's mean pairwise squared distance) so the ``D_d`` are comparable.
Equal distances give equal weights; a source twice as far as the average gets ``e^-1`` times the weight of one
at distance 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..methods.mmd import gaussian_kernel_matrix, mmd_from_kernel


def proximity_weights(
    source_features: Sequence[torch.Tensor],
    target_features: torch.Tensor,
    multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
) -> tuple[list[float], list[float]]:
    """``lambda_d`` from feature distances (module docstring).

    Args:
        source_features: one ``(N_d, F)`` tensor per source domain.
        target_features: ``(N_t, F)``.
        multipliers: Gaussian kernel bandwidth multipliers (as MK-MMD).

    Returns:
        ``(weights, distances)``: weights sum to 1, one per source; distances are the ``D_d``.

    Raises:
        ValueError: with no source, or an empty domain.
    """
    if not source_features or any(len(f) == 0 for f in (*source_features, target_features)):
        raise ValueError("proximity weights need at least one source domain and rows in every domain")
    pooled = torch.cat([*source_features, target_features]).float()
    sq = torch.cdist(pooled, pooled).pow(2)
    base = float(sq.sum() / max(len(pooled) ** 2 - len(pooled), 1)) or 1.0
    distances = []
    for features in source_features:
        kernel = gaussian_kernel_matrix(torch.cat([features, target_features]).float(), multipliers, base)
        distances.append(float(mmd_from_kernel(kernel, len(features), "biased").clamp_min(0)))
    scale = sum(distances) / len(distances)
    logits = torch.tensor([-d / scale if scale > 0 else 0.0 for d in distances])
    return torch.softmax(logits, 0).tolist(), distances
