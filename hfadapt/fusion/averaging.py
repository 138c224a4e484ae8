"""Weighted averages of the weights of models that share an architecture: the step shared by model soups and
WiSE-FT."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .compat import check_same_labels, check_same_tensors


def normalised_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """``weights`` divided by their sum, or ``n`` equal weights if ``None``.

    Raises:
        ValueError: not ``n`` weights, or weights that are negative, not finite or all zero.
    """
    if weights is None:
        return [1.0 / n] * n if n else []
    weights = [float(w) for w in weights]
    if len(weights) != n or any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be {n} finite numbers >= 0 (one per model), not all 0; got {weights}")
    return [w / sum(weights) for w in weights]


def average_state_dicts(state_dicts: Sequence[Mapping[str, torch.Tensor]],
                        weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """``theta[key] = sum_k weights[k] * state_dicts[k][key]`` for every floating-point tensor, accumulated in
    float32 and cast back to its dtype; integer and boolean tensors (e.g. ``position_ids``, step counters) are the
    first state dict's, since an average of indices or flags means nothing.

    Args:
        state_dicts: ``K`` state dicts with the same keys, shapes and dtypes.
        weights: ``K`` coefficients, used as given (callers normalise them).

    Raises:
        ValueError: a key, shape or dtype mismatch (naming the first mismatched key), or not one weight per state
            dict.
    """
    if len(weights) != len(state_dicts) or not state_dicts:
        raise ValueError(f"need one weight per state dict, got {len(weights)} weights for {len(state_dicts)}")
    check_same_tensors(state_dicts)
    averaged = {}
    for key, first in state_dicts[0].items():
        if not (first.is_floating_point() or first.is_complex()):
            averaged[key] = first.detach().clone()
            continue
        total = sum(float(w) * state[key].detach().to(torch.promote_types(first.dtype, torch.float32))
                    for w, state in zip(weights, state_dicts, strict=True))
        averaged[key] = total.to(first.dtype)
    return averaged


def averaged_model(models: Sequence[nn.Module], weights: Sequence[float]) -> nn.Module:
    """A copy of ``models[0]`` holding the weighted average of the models' weights (:func:`average_state_dicts`);
    the inputs are left unchanged.

    Raises:
        ValueError: models of different classes, labels (``num_labels``/``id2label``, for models with a config) or
            tensors (naming the first mismatched key).
    """
    if not models:
        raise ValueError("need at least one model to average")
    classes = [type(m).__name__ for m in models]
    if len(set(classes)) > 1:
        raise ValueError(f"weight averaging needs models of one class, got {classes}")
    if hasattr(models[0], "config"):
        check_same_labels([m.config for m in models])
    state = average_state_dicts([m.state_dict() for m in models], weights)
    result = copy.deepcopy(models[0])
    result.load_state_dict(state)
    return result
