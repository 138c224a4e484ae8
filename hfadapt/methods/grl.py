"""Gradient reversal (Ganin & Lempitsky, ICML 2015; Ganin et al., JMLR 2016) and the schedules of its coefficient
and of the other methods' loss weights.

The gradient-reversal layer (GRL) is the identity in the forward pass and multiplies the gradient by
``-lambda`` in the backward pass. ``lambda`` is *state* set from outside (by
:class:`hfadapt.trainer.callbacks.AdaptationScheduleCallback`, once per optimizer step); nothing here advances it.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: GradientScale) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad_output * ctx.scale.factor, None


class GradientScale:
    """Identity in the forward pass; the backward pass multiplies the gradient by :attr:`factor`, read when the
    backward runs, so it can be set after the forward (gradient balancing sets it once its ratio is known,
    :mod:`hfadapt.modeling.balancing`). The gradient-reversal layer is the case ``factor = -lambda``.

    Shape: input ``(N, *)``, output the same (a view). Raises nothing; one instance per forward pass.

    Args:
        factor: the initial factor (a float or a scalar tensor).
    """

    def __init__(self, factor: float | torch.Tensor = 1.0) -> None:
        self.factor = factor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _ScaleGradient.apply(x, self)


def reverse_gradient(x: torch.Tensor, coefficient: float) -> torch.Tensor:
    """Identity forward; the backward pass returns ``-coefficient * grad``.

    Args:
        x: any tensor, e.g. features ``(N, F)``.
        coefficient: ``lambda >= 0``, the scale of the reversed gradient.

    Returns:
        ``x`` unchanged (a view), shape as ``x``.
    """
    return GradientScale(-float(coefficient))(x)


class GradientReversalLayer(nn.Module):
    """Module form of :func:`reverse_gradient` whose coefficient is set by the trainer.

    Shape: input ``(N, *)``, output the same.

    The coefficient is a plain attribute (not a parameter or buffer): it is never trained and never saved
    with the model. Set it with :meth:`set_coefficient`.
    """

    def __init__(self, coefficient: float = 1.0):
        super().__init__()
        self.coefficient = float(coefficient)

    def set_coefficient(self, value: float) -> None:
        """Set ``lambda``. Raises ``ValueError`` if it is negative or not finite."""
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"gradient-reversal coefficient must be a finite number >= 0, got {value}")
        self.coefficient = float(value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reverse_gradient(x, self.coefficient)

    def extra_repr(self) -> str:
        return f"coefficient={self.coefficient:.4g}"


def grl_warm_start(progress: float, max_lambda: float = 1.0, gamma: float = 10.0) -> float:
    """Ganin et al.'s schedule ``lambda_p = max_lambda * (2 / (1 + exp(-gamma * p)) - 1)``.

    Ganin, Ustinova, Ajakan, Germain, Larochelle, Laviolette, Marchand, Lempitsky, "Domain-Adversarial
    Training of Neural Networks", JMLR 2016, section 5.2.2.

    Args:
        progress: ``p`` in ``[0, 1]``, the fraction of optimizer steps done (values outside are clipped).
        max_lambda: the value approached at ``p = 1``.
        gamma: steepness; the paper uses 10.

    Returns:
        ``lambda_p``, a float in ``[0, max_lambda)``; 0 at ``p = 0``.
    """
    p = min(max(float(progress), 0.0), 1.0)
    return max_lambda * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)


def grl_constant(progress: float, max_lambda: float = 1.0, gamma: float = 10.0) -> float:
    """A constant ``lambda = max_lambda`` from the first step (``progress`` and ``gamma`` are ignored)."""
    return float(max_lambda)


def cosine_ramp(progress: float, max_lambda: float = 1.0, gamma: float = 10.0) -> float:
    """AdaMatch's warm-up of the target loss weight, ``mu_p = max_lambda * (1/2 - cos(min(pi, 2 pi p)) / 2)``.

    Berthelot, Roelofs, Sohn, Carlini & Kurakin, "AdaMatch: A Unified Approach to Semi-Supervised Learning and
    Domain Adaptation", ICLR 2022: ``mu`` rises along half a cosine from 0 to ``max_lambda`` over the
    first half of training and stays there. Slower at the start than :func:`grl_warm_start` (0.067 against 0.39 of
    ``max_lambda`` at ``p = 1/12``, with ``gamma`` 10), so a method's loss waits for the task to be learnt.

    Args:
        progress: ``p`` in ``[0, 1]``, the fraction of optimizer steps done (values outside are clipped).
        max_lambda: the value reached at ``p = 1/2``.
        gamma: ignored (the schedules share one signature).

    Returns:
        ``mu_p``, a float in ``[0, max_lambda]``; 0 at ``p = 0``.
    """
    p = min(max(float(progress), 0.0), 1.0)
    return max_lambda * (0.5 - math.cos(min(math.pi, 2.0 * math.pi * p)) / 2.0)


GRL_SCHEDULES = {"warm_start": grl_warm_start, "constant": grl_constant, "cosine_ramp": cosine_ramp}
"""Schedules by name, as chosen by ``AdaptConfig.grl_schedule`` (the GRL coefficient) and
``AdaptConfig.weight_schedule`` (the other methods' loss weights)."""
