"""Rows of a batch taken apart and put back: a forward split between rows that need a gradient and rows that do
not."""

from __future__ import annotations

import torch
from transformers.utils import ModelOutput


def select_rows(inputs: dict, keep: torch.Tensor) -> dict:
    """``inputs`` with every ``(N, ...)`` tensor cut to the rows where ``keep (N,)`` (bool) is true; other values
    pass unchanged."""
    return {k: v[keep] if torch.is_tensor(v) and v.shape[:1] == keep.shape else v for k, v in inputs.items()}


def merge_rows(first, second, second_rows: torch.Tensor):
    """Put two forwards' outputs back into one batch's row order: ``first`` holds the rows where ``second_rows
    (N,)`` (bool) is false, ``second`` the others, each in batch order.

    Tensors with a row dimension are merged along it (their gradient flows to both parts); tuples, lists, dicts and
    ``ModelOutput`` are merged item by item; any other value is taken from ``first``.

    Raises:
        ValueError: if a tensor of ``first`` and ``second`` do not hold as many rows as ``second_rows`` asks for.
    """
    if torch.is_tensor(first):
        n_first, n_second = int((~second_rows).sum()), int(second_rows.sum())
        if first.shape[:1] != (n_first,) or second.shape[:1] != (n_second,):
            raise ValueError(f"cannot merge {tuple(first.shape)} and {tuple(second.shape)} rows into a batch of "
                             f"{n_first} + {n_second}")
        order = torch.cat([(~second_rows).nonzero().flatten(), second_rows.nonzero().flatten()])
        return torch.cat([first, second.to(first.dtype)])[torch.argsort(order)]
    if isinstance(first, ModelOutput):
        return type(first)(**{k: merge_rows(v, second[k], second_rows) for k, v in first.items()})
    if isinstance(first, dict):
        return {k: merge_rows(v, second[k], second_rows) for k, v in first.items()}
    if isinstance(first, tuple | list):
        return type(first)(merge_rows(a, b, second_rows) for a, b in zip(first, second, strict=True))
    return first
