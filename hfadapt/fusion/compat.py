"""Checks that several classification models can be fused: the same label set, and for weight averaging the same
parameter tensors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from transformers import PretrainedConfig
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING,
    MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING,
)

CLASSIFICATION_TASKS = ("sequence", "image")
"""What a member classifies: token sequences (``AutoModelForSequenceClassification``) or images
(``AutoModelForImageClassification``)."""


def classification_task(config: PretrainedConfig) -> str:
    """``"image"`` if only ``AutoModelForImageClassification`` knows ``config``'s type (ViT), else ``"sequence"``.

    Raises:
        ValueError: neither Auto class has a model for this config type.
    """
    is_image = type(config) in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING
    if not is_image and type(config) not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING:
        raise ValueError(f"model_type {config.model_type!r} has no sequence or image classification model in "
                         "transformers' Auto classes")
    return "image" if is_image and type(config) not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING else "sequence"


def check_same_labels(configs: Sequence[PretrainedConfig], names: Sequence[str] | None = None) -> None:
    """Raise unless every config is a single-label classifier with the first one's ``num_labels`` and ``id2label``.

    Args:
        configs: the members' configs.
        names: how errors name each member (default ``member 0``, ``member 1``, ...), e.g. their folders.

    Raises:
        ValueError: naming the first member whose ``num_labels``, ``id2label`` or ``problem_type`` (regression or
            multi-label, whose scores are not softmax probabilities) differs, and both values.
    """
    names = list(names) if names is not None else [f"member {i}" for i in range(len(configs))]
    first = configs[0]
    for name, config in zip(names, configs, strict=True):
        if config.problem_type not in (None, "single_label_classification"):
            raise ValueError(f"{name} has problem_type={config.problem_type!r}: only single-label classifiers "
                             "can be fused")
        for attribute in ("num_labels", "id2label"):
            mine, theirs = getattr(config, attribute), getattr(first, attribute)
            if mine != theirs:
                raise ValueError(f"the models must share {attribute}: {name} has {mine}, {names[0]} has {theirs}")


def check_same_tensors(state_dicts: Sequence[Mapping[str, torch.Tensor]], names: Sequence[str] | None = None) -> None:
    """Raise unless every state dict has the first one's keys, and each key the same shape and dtype.

    Raises:
        ValueError: naming the first mismatched key (missing, extra, or of another shape or dtype) and the member.
    """
    names = list(names) if names is not None else [f"member {i}" for i in range(len(state_dicts))]
    first = state_dicts[0]
    for name, state in zip(names[1:], state_dicts[1:], strict=True):
        for key, tensor in first.items():
            other = state.get(key)
            if other is None:
                raise ValueError(f"{name} has no tensor {key!r}, which {names[0]} has: the models differ in "
                                 "architecture")
            if other.shape != tensor.shape or other.dtype != tensor.dtype:
                raise ValueError(f"tensor {key!r} is {tuple(other.shape)} {other.dtype} in {name} but "
                                 f"{tuple(tensor.shape)} {tensor.dtype} in {names[0]}")
        extra = next((key for key in state if key not in first), None)
        if extra is not None:
            raise ValueError(f"{name} has a tensor {extra!r} that {names[0]} lacks: the models differ in architecture")
