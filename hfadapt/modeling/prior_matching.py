"""Target prior matching: shift a trained classifier's head bias so that its mean predicted class distribution on
the unlabelled target rows equals a prior (by default the source training labels' class distribution).

A model trained on the source domain often predicts one class too often on the target domain. Adding ``b`` to the
logits ``z`` moves every prediction's class marginal; the ``b`` with ``mean_i softmax(z_i + b) = pi`` is the
minimiser of the convex function ``mean_i logsumexp(z_i + b) - pi . b``, found here by the fixed-point iteration
``b <- b + log pi - log mean_i softmax(z_i + b)`` (iterative proportional fitting of one marginal).

This is AdaMatch's distribution alignment (Berthelot et al., ICLR 2022; ReMixMatch, Berthelot et al., ICLR 2020),
which rescales the target predictions' class marginal to the source's during training, applied once after training
and written into the head, so the saved model is a plain classifier. Shifting the logits by a class-wise constant
is the prior adjustment of Saerens, Latinne & Decaestecker (Neural Computation, 2002), here with the prior given
(the source's) rather than estimated: the assumption is that the target domain's class distribution is the
source's. Where the target's is known to differ, pass it as ``prior``.
"""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import torch
from torch import nn

from .features import HeadInputReader
from .heads import find_classification_head
from .inference import dataset_predictions


def prior_matching_shift(logits: torch.Tensor, prior: torch.Tensor, max_iter: int = 10_000,
                         tol: float = 1e-6) -> torch.Tensor:
    """The class-wise logit shift ``b`` ``(C,)`` with ``mean_i softmax(logits_i + b) = prior``, normalised to sum 0.

    Args:
        logits: ``(N, C)`` logits of the target rows, ``N >= 1``, ``C >= 2``.
        prior: ``(C,)`` class probabilities, each > 0, summing to 1 (within 1e-4).
        max_iter: iterations of the fixed point at most.
        tol: stop once every class's mean predicted probability is within ``tol`` of ``prior``.

    Returns:
        ``b`` as float32; ``(logits + b).softmax(-1).mean(0)`` equals ``prior`` within ``tol`` (when the fixed point
        converges within ``max_iter``; with finite logits it does, linearly).

    Raises:
        ValueError: ``logits`` not 2-D, empty, with fewer than 2 classes or a non-finite entry; ``prior`` of another
            length, with an entry <= 0 or not summing to 1.
    """
    if logits.dim() != 2 or logits.shape[0] == 0 or logits.shape[1] < 2:
        raise ValueError(f"logits must be (N, C) with N >= 1 and C >= 2, got shape {tuple(logits.shape)}")
    if not torch.isfinite(logits).all():
        raise ValueError("logits hold NaN or infinite values; the model's predictions on the target rows are broken")
    prior = torch.as_tensor(prior, dtype=torch.float64)
    if prior.shape != (logits.shape[1],):
        raise ValueError(f"prior has shape {tuple(prior.shape)}, the logits have {logits.shape[1]} classes")
    if (prior <= 0).any() or abs(float(prior.sum()) - 1.0) > 1e-4:
        raise ValueError(f"prior must hold class probabilities > 0 summing to 1, got {prior.tolist()}")
    z = logits.double()
    log_prior = (prior / prior.sum()).log()
    shift = torch.zeros_like(log_prior)
    for _ in range(max_iter):
        marginal = (z + shift).softmax(-1).mean(0)
        if (marginal - prior).abs().max() <= tol:
            break
        shift = shift + log_prior - marginal.log()
    return (shift - shift.mean()).float()


def _bias_layer(model: nn.Module) -> nn.Linear:
    """The ``nn.Linear`` that produces the logits: the classification head, or its last linear layer (a
    ``RobertaClassificationHead``'s ``out_proj``).

    Raises:
        ValueError: no classification head, no linear layer in it, or one without a bias.
    """
    name, head = find_classification_head(model)
    linears = [head] if isinstance(head, nn.Linear) else [m for m in head.modules() if isinstance(m, nn.Linear)]
    if not linears or linears[-1].bias is None:
        raise ValueError(f"the classification head {name!r} of {type(model).__name__} has no linear layer with a "
                         "bias to shift; target prior matching needs one")
    return linears[-1]


@torch.no_grad()
def shift_head_bias(model: nn.Module, shift: torch.Tensor) -> None:
    """Add ``shift`` ``(C,)`` to the bias of the layer that produces ``model``'s logits, in place.

    Raises:
        ValueError: as :func:`_bias_layer`, or ``shift`` of another length than that bias.
    """
    layer = _bias_layer(model)
    if shift.shape != layer.bias.shape:
        raise ValueError(f"shift has shape {tuple(shift.shape)}, the head's bias {tuple(layer.bias.shape)}")
    layer.bias.add_(shift.to(device=layer.bias.device, dtype=layer.bias.dtype))


def match_target_prior(model: nn.Module, target_rows: datasets.Dataset, collator, model_inputs: Sequence[str],
                       prior: Sequence[float] | torch.Tensor, max_rows: int | None = None,
                       batch_size: int = 32) -> torch.Tensor:
    """Shift ``model``'s head bias so that its mean predicted distribution on ``target_rows`` equals ``prior``.

    Args:
        model: a transformers sequence or image classifier (not an ``AdaptModel``: pass its ``task_model``).
        target_rows: unlabelled target rows (only the ``model_inputs`` columns are read), at least one.
        collator: pads a list of rows into a batch.
        model_inputs: the input columns the model reads.
        prior: ``(C,)`` class probabilities, e.g. the source training labels' class distribution.
        max_rows: read at most this many rows (default: all).

    Returns:
        The ``(C,)`` shift that was added (its entries sum to 0).

    Raises:
        ValueError: no target row, or as :func:`prior_matching_shift` and :func:`shift_head_bias`.
    """
    if len(target_rows) == 0:
        raise ValueError("target prior matching needs unlabelled target rows; the target set is empty")
    rows = len(target_rows) if max_rows is None else min(max_rows, len(target_rows))
    logits = dataset_predictions(HeadInputReader(model), target_rows, collator, model_inputs, rows, batch_size)[1]
    shift = prior_matching_shift(logits, torch.as_tensor(prior, dtype=torch.float64))
    shift_head_bias(model, shift)
    return shift


def class_prior(labels: Sequence[int] | torch.Tensor, num_classes: int) -> torch.Tensor:
    """The ``(num_classes,)`` class distribution of ``labels`` (ids in ``[0, num_classes)``; ``-100`` rows, unlabelled,
    are left out): the prior :func:`match_target_prior` matches by default, the source training labels'.

    Raises:
        ValueError: no labelled row, an id out of range, or a class without a row (prior matching would push its
            logit to minus infinity: give ``prior`` explicitly).
    """
    ids = torch.as_tensor(list(labels) if not torch.is_tensor(labels) else labels, dtype=torch.long).flatten()
    ids = ids[ids != -100]
    if ids.numel() == 0:
        raise ValueError("the source rows have no label: a class prior needs labelled rows")
    if ids.min() < 0 or ids.max() >= num_classes:
        raise ValueError(f"label ids must lie in [0, {num_classes}), got {ids.min().item()}..{ids.max().item()}")
    counts = torch.bincount(ids, minlength=num_classes).double()
    if (counts == 0).any():
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"classes {missing} have no source row; pass the target prior explicitly")
    return counts / counts.sum()
