"""WiSE-FT: interpolating the weights of a model before and after fine-tuning (Wortsman et al., "Robust fine-tuning
of zero-shot models", CVPR 2022).

In hfadapt the endpoints are a source-only model and an adapted one trained from the same initialisation: the
interpolation trades the adapted model's target gains against the source-only model's robustness.
"""

from __future__ import annotations

import math

from torch import nn

from .averaging import averaged_model


def wise_ft(model_0: nn.Module, model_1: nn.Module, alpha: float = 0.5) -> nn.Module:
    """``theta = (1 - alpha) * theta_0 + alpha * theta_1`` (Wortsman et al., CVPR 2022): ``alpha = 0`` gives
    ``model_0`` (e.g. source-only), ``alpha = 1`` gives ``model_1`` (e.g. adapted).

    Returns a new model of the members' class (a copy of ``model_0`` with the interpolated weights); integer and
    boolean buffers are ``model_0``'s. The inputs are left unchanged.

    Raises:
        ValueError: ``alpha`` outside ``[0, 1]``; models of different classes or labels, or state dicts that differ
            in keys, shapes or dtypes (naming the first mismatched key).
    """
    if not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return averaged_model([model_0, model_1], [1.0 - alpha, alpha])
