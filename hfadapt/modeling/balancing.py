"""Loss balancing: scale an alignment loss by how hard it pulls on the features, relative to the task loss.

A fixed weight means different things for different losses and backbones: on all-MiniLM-L6-v2's pooled features
(about 0.03 spread per dimension) Deep CORAL's loss is about 1e-5 and moves nothing at weight 1, while MK-MMD's
gradient on the features is 3-4 times the task's at the first step and slows the task. Balancing makes the weight
a share of the gradient instead: with ``alignment_balancing="gradient"`` a method whose loss scale follows the
feature scale (``AlignmentMethod.feature_scale_dependent``: MMD, JAN, CORAL) and has weight ``w`` back-propagates
``w * r * dL_m`` (its logged value stays ``w * L_m``) with

    r = ||dL_task / df|| / ||dL_m / df||      (detached, recomputed every step, clipped to ``max_ratio``)

where ``f`` ``(N, F)`` are the features the alignment heads read, so the method's gradient on the features has
``w`` times the norm of the task's. This is the adaptive weight Esser, Rombach & Ommer use to balance an
adversarial against a reconstruction loss (Taming Transformers, CVPR 2021, eq. 7), applied to domain alignment;
GradNorm (Chen et al., ICML 2018) balances task losses by the same gradient norms with learned weights.

Adversarial methods (DANN, CDAN) are balanced the same way through their gradient-reversal layer: the reversed
gradient reaching the features is scaled to ``lambda_p * ||dL_task / df||`` in norm, so the GRL coefficient
``lambda_p`` (its schedule and ``grl_max_lambda``) is read as the reversed gradient's share of the task's, while
the discriminator's own gradient is left as it is. Unbalanced, a pretrained encoder's reversed gradient follows
the discriminator's confidence instead: with ``lambda`` 0.1 it grew from 0.2% of the task's at the first steps to
39% once the discriminator told the domains apart (all-MiniLM-L6-v2, books -> electronics), enough to push the
target rows past the source ones and shift their predicted classes. The factor is known only once the method's
loss exists, so it is applied by :class:`hfadapt.methods.grl.GradientScale`, whose factor is set between the forward
and the
backward pass.
"""

from __future__ import annotations

import torch

from ..utils.distributed import sum_over_processes

ALIGNMENT_BALANCINGS = ("fixed", "gradient")
"""``fixed``: ``L = L_task + sum_m w_m L_m``; ``gradient``: ``w_m`` is a share of the task's feature gradient."""

MAX_RATIO = 1e6
"""Largest factor balancing applies (a loss whose gradient vanishes is not blown up without bound)."""


def feature_gradient_norm(loss: torch.Tensor, features: torch.Tensor) -> torch.Tensor | None:
    """``||d loss / d features||`` (Frobenius, detached), or ``None`` if ``loss`` does not depend on ``features``.

    The graph is kept, so the losses can still be back-propagated afterwards. Under DDP the norm is taken over
    every process's rows (squared norms summed); each process's gradient of its local mean, or of a loss over the
    gathered batch, is ``N`` times the global loss's, a factor that cancels in :func:`gradient_ratio`.
    """
    if not (loss.requires_grad and features.requires_grad):
        return None
    (grad,) = torch.autograd.grad(loss, features, retain_graph=True, allow_unused=True)
    if grad is None:
        return None
    return sum_over_processes(grad.detach().float().square().sum()).sqrt()


def gradient_ratio(
    reference_norm: torch.Tensor | None, loss: torch.Tensor, features: torch.Tensor, max_ratio: float = MAX_RATIO
) -> torch.Tensor | None:
    """The factor ``r = reference_norm / ||d loss / d features||``, clipped to ``[0, max_ratio]``, detached.

    Args:
        reference_norm: the task loss's feature-gradient norm (:func:`feature_gradient_norm`), a scalar.
        loss: scalar alignment loss.
        features: ``(N, F)`` tensor both losses were computed from.
        max_ratio: upper clip of ``r``.

    Returns:
        A scalar tensor, or ``None`` when either gradient does not exist (the loss does not read the features,
        e.g. UDALM's masked-LM loss, or no labelled row reached the task loss); the caller keeps the fixed weight.
    """
    if reference_norm is None:
        return None
    norm = feature_gradient_norm(loss, features)
    if norm is None:
        return None
    return (reference_norm / norm.clamp_min(reference_norm / max_ratio).clamp_min(1e-30)).clamp(max=max_ratio)


def reversal_factor(
    reference_norm: torch.Tensor | None, loss: torch.Tensor, features: torch.Tensor, coefficient: float
) -> torch.Tensor | None:
    """The factor that scales an adversarial loss's reversed feature gradient to ``coefficient`` times the task's:
    Esser et al.'s adaptive weight (CVPR 2021, eq. 7), as :func:`gradient_ratio`, applied behind the GRL.

    Args:
        reference_norm: the task loss's feature-gradient norm (:func:`feature_gradient_norm`), a scalar.
        loss: the adversarial loss, read through a gradient-reversal layer of coefficient ``coefficient``.
        features: ``(N, F)`` tensor the loss reads (before the reversal layer).
        coefficient: the GRL coefficient ``lambda >= 0`` the loss was computed with.

    Returns:
        A detached scalar ``s`` with ``||s * d loss / d features|| = coefficient * reference_norm``, i.e.
        ``coefficient * r`` for the ratio ``r`` of :func:`gradient_ratio`; ``None`` when ``coefficient`` is 0
        (nothing is reversed) or either gradient does not exist (the caller leaves the reversed gradient as it is).
    """
    if coefficient <= 0:
        return None
    ratio = gradient_ratio(reference_norm, loss, features)
    return None if ratio is None else ratio * coefficient
