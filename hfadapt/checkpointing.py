"""Checkpoints that hold the whole adaptation state, and appear only once complete.

``Trainer`` checkpoints hold what ``save_model`` writes, which for :class:`~hfadapt.AdaptTrainer` is the task model
a user loads (merged for PEFT). Resuming needs more: the alignment heads (domain discriminator, MLM head), the LoRA
weights unmerged, and the optimizer state of all of them. A checkpoint folder of ``AdaptTrainer`` therefore also
holds :data:`ADAPT_STATE_NAME`, the ``state_dict`` of the whole :class:`~hfadapt.model.AdaptModel`; optimizer,
scheduler, RNG and ``trainer_state.json`` (whose ``global_step`` fixes the gradient-reversal and loss-weight
schedules and the sampler's position) are Trainer's own files; beside each process's RNG file,
``method_rng_state_<process>.pth`` holds the methods' own random stream (:mod:`hfadapt.rng`).

A checkpoint is written under :data:`STAGING_DIR` and renamed to ``checkpoint-<step>`` when every file is on disk
(``os.replace`` within one file system is atomic), so a run killed while saving leaves no ``checkpoint-<step>``
folder that ``resume_from_checkpoint=True`` (``transformers.trainer_utils.get_last_checkpoint``) would pick.
"""

from __future__ import annotations

import os
import shutil

import safetensors.torch
import torch
from torch import nn
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_callback import TrainerState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, TrainOutput, get_last_checkpoint, rotate_checkpoints

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
            f"{path} does not match this run's model (missing keys {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}); "
            "resume with the same model, method and PEFT settings as the run that wrote it."
        )


def method_rng_path(folder: str, process_index: int) -> str:
    """The file of a checkpoint folder with one process's random stream of the methods (:mod:`hfadapt.rng`)."""
    return os.path.join(folder, f"method_rng_state_{process_index}.pth")


def last_checkpoint(folder: str | os.PathLike) -> str | None:
    """The last complete ``checkpoint-<step>`` under ``folder``, or ``None`` if there is none (or no folder).
    Half-written checkpoints under :data:`STAGING_DIR` are never returned."""
    return get_last_checkpoint(os.fspath(folder)) if os.path.isdir(folder) else None


def publish(staged: str, final: str) -> None:
    """Move a fully written checkpoint folder ``staged`` to ``final`` (replacing an older one of that name)."""
    if os.path.isdir(final):
        shutil.rmtree(final)
    os.replace(staged, final)


class ResumableCheckpointsMixin:
    """The checkpoint side of :class:`~hfadapt.AdaptTrainer` (a ``Trainer`` subclass with an ``adapt_model``):
    checkpoints that hold the whole ``AdaptModel``, appear only once complete, and resume or load as best model."""

    def _get_output_dir(self, trial) -> str:
        staging = getattr(self, "_staging_root", None)
        return staging if staging is not None else super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        """Trainer's checkpoint plus the full ``AdaptModel`` state (heads, unmerged LoRA), written under
        ``STAGING_DIR`` and renamed to ``checkpoint-<step>`` once complete on every process (see
        :mod:`hfadapt.checkpointing`)."""
        run_dir = self._get_output_dir(trial)
        staging_root = os.path.join(run_dir, STAGING_DIR)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staged, final = os.path.join(staging_root, name), os.path.join(run_dir, name)
        if self.args.should_save:
            shutil.rmtree(staging_root, ignore_errors=True)  # what a killed run left half-written
        self.accelerator.wait_for_everyone()
        self._staging_root = staging_root
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging_root = None
        if self.args.should_save:
            save_adapt_state(self.adapt_model, staged)
            if self.state.best_model_checkpoint == staged:
                self.state.best_model_checkpoint = final
                self.state.save_to_json(os.path.join(staged, TRAINER_STATE_NAME))
        self.accelerator.wait_for_everyone()  # every rank's RNG file is written
        if self.args.should_save:
            publish(staged, final)
            shutil.rmtree(staging_root, ignore_errors=True)
            rotate_checkpoints(output_dir=run_dir, save_total_limit=self.args.save_total_limit,
                               best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)
        self.accelerator.wait_for_everyone()

    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, **kwargs):
        """``Trainer.train``; resuming from the checkpoint of a *finished* run (``global_step == max_steps``)
        restores it and trains nothing (transformers 5.23 would take one step beyond ``max_steps``)."""
        checkpoint = resume_from_checkpoint
        if checkpoint is True:
            checkpoint = last_checkpoint(self.args.output_dir)
        state_file = os.path.join(checkpoint, TRAINER_STATE_NAME) if isinstance(checkpoint, str) else None
        if state_file and os.path.isfile(state_file):
            state = TrainerState.load_from_json(state_file)
            if state.max_steps and state.global_step >= state.max_steps:
                self._load_from_checkpoint(checkpoint)
                self.state = state
                losses = [e["loss"] for e in state.log_history if "loss" in e]
                return TrainOutput(state.global_step, losses[-1] if losses else float("nan"), {})
        return super().train(resume_from_checkpoint=resume_from_checkpoint, trial=trial, **kwargs)

    def _save_rng_state(self, output_dir: str) -> None:
        """Trainer's RNG file plus this process's stream of the methods (:mod:`hfadapt.rng`)."""
        super()._save_rng_state(output_dir)
        os.makedirs(output_dir, exist_ok=True)
        torch.save(self.adapt_model.method_rng.state_dict(), method_rng_path(output_dir, self.args.process_index))

    def _load_rng_state(self, checkpoint: str | None) -> None:
        """Trainer's RNG states plus the methods' stream, where the checkpoint has it (older ones do not: the
        stream then starts afresh)."""
        super()._load_rng_state(checkpoint)
        path = method_rng_path(checkpoint, self.args.process_index) if checkpoint is not None else None
        if path is not None and os.path.isfile(path):
            self.adapt_model.method_rng.load_state_dict(torch.load(path, weights_only=True))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        """Restore the whole ``AdaptModel`` (task model, heads, LoRA) from an ``AdaptTrainer`` checkpoint."""
        load_adapt_state(self.adapt_model, resume_from_checkpoint)

    def _load_best_model(self) -> None:
        load_adapt_state(self.adapt_model, self.state.best_model_checkpoint)
