"""Batched augmentations of tokenised text that never touch special tokens or padding.

Inputs are a dict of model inputs: ``input_ids (N, L)`` long, ``attention_mask (N, L)`` (optional: all ones) and
optionally ``token_type_ids (N, L)``; any other key passes through. Only *eligible* positions change: real tokens
(``attention_mask == 1``) that are not among the tokenizer's ``all_special_ids`` ([CLS], [SEP], [PAD], ...).

- ``mask:p``: a share ``p`` of each row's eligible tokens becomes ``[MASK]``.
- ``delete:p``: a share ``p`` of each row's eligible tokens is deleted; the rest shift left and the row is re-padded
  on the right to the same length ``L``.
- ``cutoff:r``: span cutoff (Shen, Zheng, Shen, Qu & Chen, "A Simple but Tough-to-Beat Data Augmentation Approach
  for Natural Language Understanding and Generation", arXiv 2020): a contiguous span of a share ``r`` of each row's
  eligible tokens is masked out of the attention (no token attends to it).
- ``dropout``: the identity; the view differs from another only by the model's dropout (SimCSE's positive pair,
  Gao, Yao & Chen, EMNLP 2021).

Counts are exact per row: ``round(p * n)`` of the row's ``n`` eligible tokens. Random draws come from the given
``torch.Generator`` or, without one, from torch's current CPU generator, so that code running inside
:meth:`hfadapt.utils.rng.RandomStream.active` draws from the methods' own stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .spec import Augmentation, AugmentationStep, parse_steps


@dataclass(frozen=True)
class SpecialTokens:
    """The token ids text augmentation needs from a tokenizer.

    Attributes:
        ids: ids never changed (the tokenizer's ``all_special_ids``).
        mask_token_id: ``[MASK]``, or ``None`` if the tokenizer has none.
        pad_token_id: the id deleted positions are re-padded with.
    """

    ids: tuple[int, ...]
    mask_token_id: int | None = None
    pad_token_id: int = 0

    @classmethod
    def from_tokenizer(cls, tokenizer) -> SpecialTokens:
        """Read the ids from a transformers tokenizer.

        Raises:
            ValueError: if ``tokenizer`` has no ``all_special_ids`` (it is not a tokenizer).
        """
        ids = getattr(tokenizer, "all_special_ids", None)
        if ids is None:
            raise ValueError(f"text augmentation needs the model's tokenizer, got {type(tokenizer).__name__}")
        mask, pad = getattr(tokenizer, "mask_token_id", None), getattr(tokenizer, "pad_token_id", None)
        return cls(tuple(sorted(set(ids))), None if mask is None else int(mask), 0 if pad is None else int(pad))


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Uniform ``[0, 1)`` numbers drawn on the CPU (the generator's device) and moved to ``device``."""
    return torch.rand(shape, generator=generator).to(device)


def eligible_positions(inputs: dict, special: SpecialTokens) -> torch.Tensor:
    """``(N, L)`` bool: the real, non-special tokens of ``inputs`` (the only positions an augmentation changes)."""
    ids = inputs["input_ids"]
    real = inputs.get("attention_mask")
    real = torch.ones_like(ids, dtype=torch.bool) if real is None else real.bool()
    return real & ~torch.isin(ids, torch.tensor(special.ids, dtype=ids.dtype, device=ids.device))


def choose_share(eligible: torch.Tensor, share: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Choose exactly ``round(share * n_i)`` of the ``n_i`` eligible positions of each row, uniformly.

    Args:
        eligible: ``(N, L)`` bool.
        share: in ``[0, 1]``.

    Returns:
        ``(N, L)`` bool, a subset of ``eligible``.
    """
    counts = eligible.sum(1)
    k = torch.floor(counts * share + 0.5).long()
    scores = _uniform(tuple(eligible.shape), generator, eligible.device).masked_fill(~eligible, 2.0)
    rank = scores.argsort(1).argsort(1)  # ineligible positions rank after every eligible one
    return rank < k.unsqueeze(1)


def token_masking(inputs: dict, p: float, special: SpecialTokens, generator: torch.Generator | None = None) -> dict:
    """Replace a share ``p`` of each row's eligible tokens with ``[MASK]``.

    Raises:
        ValueError: if ``special`` has no mask token.
    """
    if special.mask_token_id is None:
        raise ValueError("token masking needs a tokenizer with a mask token")
    chosen = choose_share(eligible_positions(inputs, special), p, generator)
    ids = inputs["input_ids"]
    return {**inputs, "input_ids": ids.masked_fill(chosen, special.mask_token_id)}


def token_deletion(inputs: dict, p: float, special: SpecialTokens, generator: torch.Generator | None = None) -> dict:
    """Delete a share ``p`` of each row's eligible tokens, shift the kept tokens left and re-pad on the right.

    Shapes are kept: ``(N, L)`` in, ``(N, L)`` out; ``attention_mask`` (created if absent) marks the kept tokens.
    """
    ids = inputs["input_ids"]
    real = inputs.get("attention_mask")
    real = torch.ones_like(ids, dtype=torch.bool) if real is None else real.bool()
    keep = real & ~choose_share(eligible_positions(inputs, special), p, generator)
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices  # kept positions first, in order
    filled = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0) < keep.sum(1, keepdim=True)
    out = {**inputs, "input_ids": ids.gather(1, order).masked_fill(~filled, special.pad_token_id)}
    mask = inputs.get("attention_mask")
    out["attention_mask"] = filled.to(mask.dtype if mask is not None else torch.long)
    if inputs.get("token_type_ids") is not None:
        out["token_type_ids"] = inputs["token_type_ids"].gather(1, order).masked_fill(~filled, 0)
    return out


def span_cutoff(inputs: dict, r: float, special: SpecialTokens, generator: torch.Generator | None = None) -> dict:
    """Mask a contiguous span of ``round(r * n_i)`` of each row's ``n_i`` eligible tokens out of the attention
    (Shen et al. 2020); the span starts uniformly among the positions where it fits."""
    eligible = eligible_positions(inputs, special)
    counts = eligible.sum(1)
    k = torch.floor(counts * r + 0.5).long()
    start = torch.floor(_uniform((len(counts),), generator, counts.device) * (counts - k + 1)).long()
    position = eligible.long().cumsum(1) - 1  # index among the row's eligible tokens
    cut = eligible & (position >= start.unsqueeze(1)) & (position < (start + k).unsqueeze(1))
    mask = inputs.get("attention_mask")
    mask = torch.ones_like(inputs["input_ids"]) if mask is None else mask
    return {**inputs, "attention_mask": mask.masked_fill(cut, 0)}


def dropout_view(inputs: dict, value=None, special: SpecialTokens | None = None, generator=None) -> dict:
    """The identity (a shallow copy): the view differs only by the model's dropout."""
    return dict(inputs)


TEXT_AUGMENTATIONS: dict[str, Augmentation] = {
    "mask": Augmentation(token_masking, (0.0, 1.0), needs_mask_token=True),
    "delete": Augmentation(token_deletion, (0.0, 1.0)),
    "cutoff": Augmentation(span_cutoff, (0.0, 1.0)),
    "dropout": Augmentation(dropout_view),
}
"""Text augmentations by name: ``fn(inputs, value, special_tokens, generator) -> inputs``."""


def parse_text_augmentation(spec: str) -> list[AugmentationStep]:
    """Parse a spec such as ``"mask:0.1+cutoff:0.1"`` against :data:`TEXT_AUGMENTATIONS`.

    Raises:
        ValueError: on an unknown name or an out-of-range value (:func:`~hfadapt.augmentation.spec.parse_steps`).
    """
    return parse_steps(spec, TEXT_AUGMENTATIONS)


class TextAugmenter:
    """Apply parsed text augmentation steps in order.

    >>> augment = TextAugmenter(parse_text_augmentation("mask:0.5"), SpecialTokens((0, 1, 2, 3), 3))
    >>> augment({"input_ids": torch.tensor([[1, 7, 8, 2, 0]]),
    ...          "attention_mask": torch.tensor([[1, 1, 1, 1, 0]])})["input_ids"].eq(3).sum().item()
    1

    Raises:
        ValueError: at construction, if a step is no text augmentation or needs a mask token ``special`` lacks.
    """

    def __init__(self, steps: list[AugmentationStep], special: SpecialTokens):
        unknown = [s.name for s in steps if s.name not in TEXT_AUGMENTATIONS]
        if unknown:
            raise ValueError(f"{unknown} are no text augmentations; choose from {sorted(TEXT_AUGMENTATIONS)}")
        if special.mask_token_id is None and any(TEXT_AUGMENTATIONS[s.name].needs_mask_token for s in steps):
            raise ValueError("the augmentation masks tokens but the tokenizer has no mask token")
        self.steps, self.special = list(steps), special

    def __call__(self, inputs: dict, generator: torch.Generator | None = None) -> dict:
        """Augment a batch of model inputs (see the module docstring for shapes)."""
        for step in self.steps:
            inputs = TEXT_AUGMENTATIONS[step.name].fn(inputs, step.value, self.special, generator)
        return inputs
