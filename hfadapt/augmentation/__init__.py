"""Augmented views of model inputs, for consistency-based self-training (:mod:`hfadapt.methods.fixmatch`, ...)
and usable alone.

A spec joins augmentations with ``+``, each ``name`` or ``name:value``; one spec may list text and image
augmentations, and a model uses those of its input kind (``dropout`` is both):

>>> text, image = split_augmentation("mask:0.1+cutoff:0.1+randaugment:2+cutout:0.5")
>>> [(s.name, s.value) for s in text], [(s.name, s.value) for s in image]
([('mask', 0.1), ('cutoff', 0.1)], [('randaugment', 2), ('cutout', 0.5)])
"""

from __future__ import annotations

from .image import IMAGE_AUGMENTATIONS, ImageAugmenter, cutout, parse_image_augmentation, rand_augment, trivial_augment
from .spec import Augmentation, AugmentationStep, parse_steps
from .text import (
    TEXT_AUGMENTATIONS,
    SpecialTokens,
    TextAugmenter,
    dropout_view,
    parse_text_augmentation,
    span_cutoff,
    token_deletion,
    token_masking,
)


def split_augmentation(spec: str) -> tuple[list[AugmentationStep], list[AugmentationStep]]:
    """Parse a spec that may name text and image augmentations; return ``(text_steps, image_steps)``, each in
    the spec's order.

    Raises:
        ValueError: on an unknown name (listing both registries) or an out-of-range value.
    """
    steps = parse_steps(spec, {**IMAGE_AUGMENTATIONS, **TEXT_AUGMENTATIONS})
    return ([s for s in steps if s.name in TEXT_AUGMENTATIONS], [s for s in steps if s.name in IMAGE_AUGMENTATIONS])


__all__ = [
    "IMAGE_AUGMENTATIONS",
    "TEXT_AUGMENTATIONS",
    "Augmentation",
    "AugmentationStep",
    "ImageAugmenter",
    "SpecialTokens",
    "TextAugmenter",
    "cutout",
    "dropout_view",
    "parse_image_augmentation",
    "parse_steps",
    "parse_text_augmentation",
    "rand_augment",
    "span_cutoff",
    "split_augmentation",
    "token_deletion",
    "token_masking",
    "trivial_augment",
]
