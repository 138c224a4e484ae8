"""Checkpoints that hold the whole adaptation state, and appear only once complete.

``Trainer`` checkpoints hold what ``save_model`` writes, which for :class:`~hfadapt.AdaptTrainer` is the task model
a user loads (merged for PEFT). Resuming needs more: the alignment heads (domain discriminator, MLM head), the LoRA
weights unmerged, and the optimizer state of all of them. A checkpoint folder of ``AdaptTrainer`` therefore also
holds :data:`ADAPT_STATE_NAME`, the ``state_dict`` of the whole :class:`~hfadapt.modeling.model.AdaptModel`; optimizer,
scheduler, RNG and ``trainer_state.json`` (whose ``global_step`` fixes the gradient-reversal and loss-weight
schedules and the sampler's position) are Trainer's own files; beside each process's RNG file,
``method_rng_state_<process>.pth`` holds the methods' own random stream (:mod:`hfadapt.utils.rng`).

A checkpoint is written under :data:`STAGING_DIR` and renamed to ``checkpoint-<step>`` when every file is on disk
(``os.replace`` within one file system is atomic), so a run killed while saving leaves no ``checkpoint-<step>``
folder that ``resume_from_checkpoint=True`` would pick. The last two files written into it are the run's
fingerprint (:mod:`hfadapt.trainer.fingerprint`) and the sha256 manifest of all its files
(:mod:`hfadapt.trainer.integrity`).

Resuming checks, before anything is loaded: that the checkpoint's files match its manifest (a missing, truncated or
altered file is an error naming it), that it holds an optimizer state (unless ``AdaptConfig.resume_weights_only``),
and that its fingerprint is this run's. ``resume_from_checkpoint=True`` picks the latest checkpoint of *this* run
(by fingerprint) under ``output_dir``. A run resumed with a larger ``max_steps`` trains on to it; one whose
checkpoint has trained beyond ``max_steps`` is refused.

The task model a run saves at the end (:func:`save_folder_atomically`) is written the same way: into
:data:`MODEL_STAGING_DIR`, with a manifest, then moved into place, the manifest last.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable

import safetensors
import safetensors.torch
import torch
from torch import nn
from transformers.trainer import OPTIMIZER_NAME, SCHEDULER_NAME, TRAINER_STATE_NAME
from transformers.trainer_callback import TrainerState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, TrainOutput, sort_checkpoints

from .callbacks import MinStepsEarlyStoppingCallback
from .fingerprint import RunMismatchError, check_fingerprint, write_fingerprint
from .integrity import MANIFEST_NAME, IntegrityError, read_manifest, verify_manifest, write_manifest

ADAPT_STATE_NAME = "adapt_model.safetensors"
"""File of a checkpoint folder with the full ``AdaptModel`` state (task model, heads, unmerged LoRA weights)."""

STAGING_DIR = ".checkpoint-in-progress"
"""Folder under the output directory where a checkpoint is written before it is published."""

MODEL_STAGING_DIR = ".model-in-progress"
"""Folder under the output directory where the final model is written before it is moved into place."""

OPTIMIZER_FILES = (OPTIMIZER_NAME, SCHEDULER_NAME)
"""Files of a checkpoint that a resume of the weights only (``resume_weights_only``) neither needs nor reads."""

_CHECKPOINT_RE = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def save_adapt_state(model: nn.Module, folder: str) -> None:
    """Write ``model.state_dict()`` to ``folder/adapt_model.safetensors`` (tied weights, such as an MLM head that
    shares the input embeddings, are stored once)."""
    os.makedirs(folder, exist_ok=True)
    safetensors.torch.save_model(model, os.path.join(folder, ADAPT_STATE_NAME))


def load_adapt_state(model: nn.Module, folder: str) -> None:
    """Load ``folder/adapt_model.safetensors`` into ``model`` (strict: every key must match).

    Raises:
        FileNotFoundError: if the folder has no such file, i.e. it was not written by ``AdaptTrainer``.
        IntegrityError: if the file is not a readable safetensors file (truncated, empty), naming it.
        RuntimeError: if the keys differ (a checkpoint of another method, model or PEFT setting).
    """
    path = os.path.join(folder, ADAPT_STATE_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{folder} has no {ADAPT_STATE_NAME}: it is not a checkpoint of AdaptTrainer, so the alignment heads "
            "and optimizer cannot be restored. Resume from a checkpoint-<step> folder written by AdaptTrainer."
        )
    try:
        missing, unexpected = safetensors.torch.load_model(model, path, strict=False)
    except safetensors.SafetensorError as err:
        raise IntegrityError(f"{path} is not a readable safetensors file (truncated or corrupt): {err}", path) from err
    if missing or unexpected:
        raise RuntimeError(
            f"{path} does not match this run's model (missing keys {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}); "
            "resume with the same model, method and PEFT settings as the run that wrote it."
        )


def method_rng_path(folder: str, process_index: int) -> str:
    """The file of a checkpoint folder with one process's random stream of the methods (:mod:`hfadapt.utils.rng`)."""
    return os.path.join(folder, f"method_rng_state_{process_index}.pth")


def checkpoint_step(path: str | os.PathLike) -> int | None:
    """The optimizer step in a ``checkpoint-<step>`` folder's name (``None`` for any other name)."""
    match = _CHECKPOINT_RE.match(os.path.basename(os.fspath(path)))
    return int(match.group(1)) if match else None


def checkpoints(folder: str | os.PathLike) -> list[str]:
    """The published ``checkpoint-<step>`` folders under ``folder``, latest step first (``[]`` without a folder).
    Half-written checkpoints under :data:`STAGING_DIR` are never listed."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return []
    found = [(step, name) for name in os.listdir(folder)
             if (step := checkpoint_step(name)) is not None and os.path.isdir(os.path.join(folder, name))]
    return [os.path.join(folder, name) for _, name in sorted(found, reverse=True)]


def last_checkpoint(folder: str | os.PathLike) -> str | None:
    """The last complete ``checkpoint-<step>`` under ``folder``, or ``None`` if there is none (or no folder).
    Half-written checkpoints under :data:`STAGING_DIR` are never returned."""
    found = checkpoints(folder)
    return found[0] if found else None


def remove_folder(folder: str) -> None:
    """Delete ``folder`` so that no partial copy stays visible under its name: it is renamed to a hidden
    ``.deleting-<name>`` first, then removed (a run killed meanwhile leaves only the hidden folder)."""
    if not os.path.isdir(folder):
        return
    parent, name = os.path.split(os.path.normpath(folder))
    trash = os.path.join(parent, f".deleting-{name}")
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def publish(staged: str, final: str) -> None:
    """Move a fully written checkpoint folder ``staged`` to ``final`` (replacing an older one of that name)."""
    remove_folder(final)
    os.replace(staged, final)


def rotate(run_dir: str, save_total_limit: int | None, best_model_checkpoint: str | None) -> None:
    """Delete the oldest checkpoints beyond ``save_total_limit``, as ``transformers.trainer_utils.rotate_checkpoints``
    does (the latest and the best are kept), each through :func:`remove_folder`."""
    if not save_total_limit or save_total_limit <= 0:
        return
    found = sort_checkpoints(run_dir, PREFIX_CHECKPOINT_DIR, use_mtime=False)
    if len(found) <= save_total_limit:
        return
    protected = {os.path.normpath(found[-1])}
    if best_model_checkpoint is not None:
        protected.add(os.path.normpath(best_model_checkpoint))
    excess = len(found) - max(save_total_limit, len(protected))
    for folder in found:
        if excess <= 0:
            break
        if os.path.normpath(folder) not in protected:
            remove_folder(folder)
            excess -= 1


def save_folder_atomically(output_dir: str, write: Callable[[str], None]) -> None:
    """Run ``write(folder)`` on an empty staging folder, add a manifest of what it wrote, then move the files into
    ``output_dir``, the manifest last. ``output_dir`` holds no manifest while files are moved, so a folder left by
    a killed save never verifies (:func:`hfadapt.trainer.integrity.verify_manifest`) as complete."""
    staging = os.path.join(output_dir, MODEL_STAGING_DIR)
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    write(staging)
    manifest = write_manifest(staging)
    old_manifest = os.path.join(output_dir, MANIFEST_NAME)
    if os.path.exists(old_manifest):
        os.remove(old_manifest)  # from here until the new one lands, the folder is not a finished model
    for name in manifest["files"]:
        destination = os.path.join(output_dir, name)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        os.replace(os.path.join(staging, name), destination)
    os.replace(os.path.join(staging, MANIFEST_NAME), old_manifest)
    shutil.rmtree(staging, ignore_errors=True)


def check_resumable(folder: str, fingerprint: dict | None, weights_only: bool = False) -> None:
    """Everything that must hold before a run resumes from checkpoint ``folder``; nothing is loaded.

    Args:
        folder: a ``checkpoint-<step>`` folder.
        fingerprint: this run's :func:`~hfadapt.trainer.fingerprint.run_fingerprint` (``None``: not checked).
        weights_only: resume the weights with a fresh optimizer: a missing optimizer or scheduler state is allowed.

    Raises:
        FileNotFoundError: if ``folder`` does not exist or is not a checkpoint of ``AdaptTrainer``.
        IntegrityError: a file that is missing, truncated or corrupt (named), no manifest, or no optimizer state
            (``optimizer.pt``) without ``weights_only``.
        RunMismatchError: if the checkpoint's fingerprint differs from ``fingerprint``, naming what differs.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"checkpoint {folder} does not exist")
    if read_manifest(folder) is None and not os.path.isfile(os.path.join(folder, ADAPT_STATE_NAME)):
        raise FileNotFoundError(
            f"{folder} has no {ADAPT_STATE_NAME}: it is not a checkpoint of AdaptTrainer, so the alignment heads "
            "and optimizer cannot be restored. Resume from a checkpoint-<step> folder written by AdaptTrainer."
        )
    optimizer = os.path.join(folder, OPTIMIZER_NAME)
    if not weights_only and not os.path.isfile(optimizer):
        raise IntegrityError(
            f"{optimizer} is missing: the optimizer state (AdamW's moments) cannot be restored, and a fresh one "
            "would make the resumed run differ from an uninterrupted one. Set resume_weights_only=True to resume "
            "the weights with a fresh optimizer and learning-rate schedule.", optimizer)
    verify_manifest(folder, skip=OPTIMIZER_FILES if weights_only else ())
    if fingerprint is not None:
        check_fingerprint(folder, fingerprint)


def matching_checkpoint(output_dir: str, fingerprint: dict) -> str | None:
    """The latest checkpoint under ``output_dir`` that this run (``fingerprint``) wrote; ``None`` if there is
    no checkpoint at all.

    Raises:
        RunMismatchError: if there are checkpoints but none of this run, naming what differs in the latest.
    """
    found = checkpoints(output_dir)
    for folder in found:
        try:
            check_fingerprint(folder, fingerprint)
        except RunMismatchError:
            continue
        return folder
    if found:
        check_fingerprint(found[0], fingerprint)  # raises, naming what differs
    return None


class ResumableCheckpointsMixin:
    """The checkpoint side of :class:`~hfadapt.AdaptTrainer` (a ``Trainer`` subclass with an ``adapt_model``):
    checkpoints that hold the whole ``AdaptModel``, appear only once complete, and resume or load as best model."""

    def _get_output_dir(self, trial) -> str:
        staging = getattr(self, "_staging_root", None)
        return staging if staging is not None else super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        """Trainer's checkpoint plus the full ``AdaptModel`` state (heads, unmerged LoRA), written under
        ``STAGING_DIR`` and renamed to ``checkpoint-<step>`` once complete on every process (see
        :mod:`hfadapt.trainer.checkpointing`)."""
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
            fingerprint = getattr(self, "run_fingerprint", None)
            if fingerprint is not None:
                write_fingerprint(staged, fingerprint)
            write_manifest(staged)  # last: it covers every file above
            publish(staged, final)
            shutil.rmtree(staging_root, ignore_errors=True)
            rotate(run_dir, self.args.save_total_limit, self.state.best_model_checkpoint)
        self.accelerator.wait_for_everyone()

    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, **kwargs):
        """``Trainer.train``, resuming only from a verified checkpoint of this run.

        ``resume_from_checkpoint=True`` picks the latest checkpoint under ``output_dir`` whose fingerprint is this
        run's. A checkpoint is checked by :func:`check_resumable` before anything is loaded. A resumed run trains
        on to this run's ``max_steps`` (the checkpoint's own may be smaller); one that has already reached it, or
        that early stopping ended, is restored (its best checkpoint with ``load_best_model_at_end``) and trains
        nothing (transformers 5.23 would take one step beyond ``max_steps``, and would train on past the stop).

        Raises:
            ValueError: with ``True`` and no checkpoint under ``output_dir``, or a checkpoint that has trained
                more optimizer steps than ``max_steps``.
            FileNotFoundError, IntegrityError, RunMismatchError: from :func:`check_resumable`.
        """
        checkpoint = None if resume_from_checkpoint is False else resume_from_checkpoint
        if checkpoint is True:
            checkpoint = matching_checkpoint(self.args.output_dir, self.run_fingerprint)
            if checkpoint is None:
                raise ValueError(f"No valid checkpoint found in output directory ({self.args.output_dir})")
        if checkpoint is not None:
            checkpoint = os.fspath(checkpoint)
            check_resumable(checkpoint, self.run_fingerprint, self.args.resume_weights_only)
            state = TrainerState.load_from_json(os.path.join(checkpoint, TRAINER_STATE_NAME))
            max_steps = self._planned_max_steps()
            if state.global_step > max_steps:
                raise ValueError(
                    f"{checkpoint} has trained {state.global_step} optimizer steps, more than max_steps={max_steps}; "
                    f"resuming cannot undo steps. Resume with max_steps >= {state.global_step}, or start afresh in "
                    "a new output_dir.")
            if state.global_step == max_steps or self._stopped_early(state):
                state.max_steps = max_steps
                self.state = state
                if self.args.load_best_model_at_end and state.best_model_checkpoint is not None:
                    self._load_best_model()  # as the finished run did after its last step
                else:
                    self._load_from_checkpoint(checkpoint)
                losses = [e["loss"] for e in state.log_history if "loss" in e]
                return TrainOutput(state.global_step, losses[-1] if losses else float("nan"), {})
        return super().train(resume_from_checkpoint=checkpoint, trial=trial, **kwargs)

    def _stopped_early(self, state: TrainerState) -> bool:
        """Whether early stopping ended the run at the checkpoint of ``state``: its patience counter, saved right
        after that step's evaluation, had reached this run's patience, with this run's ``min_steps`` done."""
        saved = state.stateful_callbacks.get(MinStepsEarlyStoppingCallback.__name__)
        if not self.args.early_stopping_patience or not saved:
            return False
        saved = saved[0] if isinstance(saved, list) else saved
        counter = saved.get("attributes", {}).get("early_stopping_patience_counter", 0)
        return counter >= self.args.early_stopping_patience and state.global_step >= self.args.early_stopping_min_steps

    def _planned_max_steps(self) -> int:
        """The optimizer steps this run trains in all: ``max_steps``, or the epochs' worth of steps."""
        if self.args.max_steps > 0:
            return self.args.max_steps
        return self.set_initial_training_values(self.args, self.get_train_dataloader())[-1]

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        """Trainer's; with ``resume_weights_only`` nothing is loaded: the optimizer and the learning-rate
        schedule start afresh."""
        if not self.args.resume_weights_only:
            super()._load_optimizer_and_scheduler(checkpoint)

    def _save_rng_state(self, output_dir: str) -> None:
        """Trainer's RNG file plus this process's stream of the methods (:mod:`hfadapt.utils.rng`)."""
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

    def _load_callback_state(self) -> None:
        """Trainer's restore of the checkpoint's callback state (``restore_callback_states_from_checkpoint``), after
        which this run's configuration sets the early-stopping patience and ``min_steps``: the checkpoint supplies
        only the patience counter (a checkpoint whose stored state lacks ``min_steps`` would rebuild it with 0)."""
        super()._load_callback_state()
        for callback in self.callback_handler.callbacks:
            if isinstance(callback, MinStepsEarlyStoppingCallback):
                callback.early_stopping_patience = self.args.early_stopping_patience
                callback.min_steps = self.args.early_stopping_min_steps

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        """Restore the whole ``AdaptModel`` (task model, heads, LoRA) from an ``AdaptTrainer`` checkpoint."""
        load_adapt_state(self.adapt_model, resume_from_checkpoint)

    def _load_best_model(self) -> None:
        """Restore the best checkpoint's whole ``AdaptModel`` once its files are verified against its manifest."""
        verify_manifest(self.state.best_model_checkpoint, skip=OPTIMIZER_FILES)
        load_adapt_state(self.adapt_model, self.state.best_model_checkpoint)
