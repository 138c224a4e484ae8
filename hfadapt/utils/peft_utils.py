"""LoRA through PEFT: wrapping a task model and writing it back as a plain or adapter checkpoint."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from ..modeling.heads import find_classification_head


def lora_config_from(config) -> peft.LoraConfig:  # noqa: F821
    """A ``peft.LoraConfig`` for sequence classification from an :class:`~hfadapt.AdaptConfig`'s ``lora_*`` fields.

    The classification head is trained in full (``modules_to_save``) since it starts from random weights.
    """
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_target_modules,
    )


def wrap_with_peft(model: nn.Module, peft_config) -> nn.Module:
    """Wrap ``model`` with ``peft.get_peft_model``, making sure its classification head stays trainable.

    Raises:
        ValueError: if ``peft_config.target_modules`` matches no module (peft's message, with a hint), or if the
            model is a multi-task model with soft-shared layers (per-task copies of whole layers and adapters on
            them do not mix).
    """
    from peft import get_peft_model

    if len(getattr(model, "soft_shared", ())):
        raise ValueError("a MultiTaskModel with soft_sharing_modules copies whole layers per task, which LoRA would "
                         "rename and freeze: train it without use_peft, or build it without soft sharing")
    head_name, _ = find_classification_head(model)
    peft_config = copy.deepcopy(peft_config)
    to_save = list(peft_config.modules_to_save or [])
    if head_name not in to_save:
        peft_config.modules_to_save = [*to_save, head_name]
    try:
        return get_peft_model(model, peft_config)
    except ValueError as err:
        raise ValueError(
            f"{err}\nSet lora_target_modules to module names of {type(model).__name__} "
            "(BERT: query value; ViT in transformers 5.x: q_proj v_proj)."
        ) from err


def is_peft_model(model: nn.Module) -> bool:
    """Whether ``model`` is a ``peft.PeftModel``."""
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return False
    return isinstance(model, PeftModel)


def save_task_model(model: nn.Module, output_dir: str | Path, peft_save: str = "merged") -> None:
    """Write the task model so that ``AutoModelFor*.from_pretrained(output_dir)`` (or peft's ``AutoPeftModelFor*``
    for ``peft_save="adapter"``) loads it without hfadapt.

    A PEFT model is merged on a copy, so training can go on with the adapter after a checkpoint.
    """
    if peft_save == "merged":
        model = merged_copy(model)
    model.save_pretrained(output_dir)


def merged_copy(model: nn.Module) -> nn.Module:
    """A PEFT model's adapters merged into a copy of its base model (peft's ``merge_and_unload``), so the model
    itself keeps training with them; any other model as it is."""
    return copy.deepcopy(model).merge_and_unload() if is_peft_model(model) else model


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{name: tensor}`` of the task model as ``save_task_model`` writes it (PEFT merged, :func:`merged_copy`),
    detached copies on the CPU, each of its parameter's shape: what ``load_state_dict`` of a fresh model of the
    same architecture takes."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in merged_copy(model).state_dict().items()}
