"""Checkpoints that hold the whole adaptation state, and appear only once complete.

``Trainer`` checkpoints hold what ``save_model`` writes, which for :class:`~hfadapt.AdaptTrainer` is the task model
a user loads (merged for PEFT). Resuming needs more: the alignment heads (domain discriminator, MLM head), the LoRA
weights unmerged, and the optimizer state of all of them. A checkpoint folder of ``AdaptTrainer`` therefore also
holds :data:`ADAPT_STATE_NAME`, the ``state_dict`` of the whole :class:`~hfadapt.model.AdaptModel`; optimizer,
scheduler, RNG and ``trainer_state.json`` (whose ``global_step`` fixes the gradient-reversal and loss-weight
schedules and the sampler's position) are Trainer's own files.

A checkpoint is written under :data:`STAGING_DIR` and renamed to ``checkpoint-<step>`` when every file is on disk
(``os.replace`` within one file system is atomic), so a run killed while saving leaves no ``checkpoint-<step>``
folder that ``resume_from_checkpoint=True`` (``transformers.trainer_utils.get_last_checkpoint``) would pick.
"""

from __future__ import annotations

import os
import shutil

import safetensors.torch
from torch import nn
from transformers.trainer_utils import get_last_checkpoint

ADAPT_STATE_NAME = "adapt_model.safetensors"
"""File of a checkpoint folder with the full ``AdaptModel`` state (task model, heads, unmerged LoRA weights)."""

STAGING_DIR = ".checkpoint-in-progress"
"""Folder under the output directory where a checkpoint is written before it is published."""


def save_adapt_state(model: nn.Module, folder: str) -> None:
    """Write ``model.state_dict()`` to ``folder/adapt_model.safetensors`` (tied weights, such as an MLM head that
    shares the input embeddings, are stored once)."""
    os.makedirs(folder, exist_ok=True)
    safetensors.torch.save_model(model, os.path.join(folder, ADAPT_STATE_NAME))


def load_adapt_state(model: nn.Module, folder: str) -> None:
    """Load ``folder/adapt_model.safetensors`` into ``model`` (strict: every key must match).

    Raises:
        FileNotFoundError: if the folder has no such file, i.e. it was not written by ``AdaptTrainer``.
        RuntimeError: if the keys differ (a checkpoint of another method, model or PEFT setting).
    """
    path = os.path.join(folder, ADAPT_STATE_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{folder} has no {ADAPT_STATE_NAME}: it is not a checkpoint of AdaptTrainer, so the alignment heads "
            "and optimizer cannot be restored. Resume from a checkpoint-<step> folder written by AdaptTrainer."
        )
    missing, unexpected = safetensors.torch.load_model(model, path, strict=False)
    if missing or unexpected:
        raise RuntimeError(
            f"{path} does not match this run's model (missing keys {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}); "
            "resume with the same model, method and PEFT settings as the run that wrote it."
        )


def last_checkpoint(folder: str | os.PathLike) -> str | None:
    """The last complete ``checkpoint-<step>`` under ``folder``, or ``None`` if there is none (or no folder).
    Half-written checkpoints under :data:`STAGING_DIR` are never returned."""
    return get_last_checkpoint(os.fspath(folder)) if os.path.isdir(folder) else None


def publish(staged: str, final: str) -> None:
    """Move a fully written checkpoint folder ``staged`` to ``final`` (replacing an older one of that name)."""
    if os.path.isdir(final):
        shutil.rmtree(final)
    os.replace(staged, final)
