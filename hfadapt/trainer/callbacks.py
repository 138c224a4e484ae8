"""Trainer callbacks that hold adaptation state the model must not advance itself."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import datasets
import torch
from transformers import EarlyStoppingCallback, TrainerCallback

from ..modeling.heads import unwrap_peft
from ..modeling.prior_matching import match_target_prior

logger = logging.getLogger(__name__)

Setter = Callable[[float], None]
Schedule = Callable[[float], float]


class AdaptationScheduleCallback(TrainerCallback):
    """Sets scheduled coefficients (the gradient-reversal ``lambda``, the loss-weight factor) once per optimizer
    step, before its first micro-batch.

    Each coefficient is ``schedule(p)`` with ``p = state.global_step / state.max_steps`` (optimizer steps done
    over total), so it is the same for every micro-batch of an accumulation cycle, evaluation does not move it,
    and a resumed run (which restores ``global_step``) continues where it stopped.

    Args:
        *schedules: ``(set_coefficient, schedule)`` pairs, e.g. ``(AdaptModel.set_grl_coefficient, grl_warm_start)``
            or ``(AdaptModel.set_weight_factor, ...)``; ``schedule(progress) -> value`` (see
            :mod:`hfadapt.methods.grl`).
    """

    def __init__(self, *schedules: tuple[Setter, Schedule]):
        self.schedules = schedules

    def progress(self, state) -> float:
        """Fraction of optimizer steps done, in ``[0, 1]``."""
        return state.global_step / state.max_steps if state.max_steps else 0.0

    def _apply(self, state) -> None:
        p = self.progress(state)
        for set_coefficient, schedule in self.schedules:
            set_coefficient(schedule(p))

    def on_train_begin(self, args, state, control, **kwargs):
        self._apply(state)

    def on_step_begin(self, args, state, control, **kwargs):
        self._apply(state)


class MinStepsEarlyStoppingCallback(EarlyStoppingCallback):
    """``transformers.EarlyStoppingCallback`` that never stops before ``min_steps`` optimizer steps.

    Stops once ``metric_for_best_model`` (for a converged source-only baseline: source-validation accuracy, never a
    target metric) has not improved for ``early_stopping_patience`` evaluations and ``min_steps`` are done; with
    ``load_best_model_at_end`` the best checkpoint is then restored. Evaluations before ``min_steps`` still count
    towards the patience, so training stops at the first evaluation after ``min_steps`` if the metric has already
    stalled for that long. A stop requested elsewhere (``max_steps`` below ``min_steps``) is left as it is.

    Args:
        early_stopping_patience: evaluations without improvement before stopping (>= 1).
        min_steps: optimizer steps before stopping is allowed (>= 0).
        early_stopping_threshold: how much better than the best so far the metric must be to count as better, as
            in ``EarlyStoppingCallback``.
    """

    def __init__(self, early_stopping_patience: int = 1, min_steps: int = 0, early_stopping_threshold: float = 0.0):
        super().__init__(early_stopping_patience=early_stopping_patience,
                         early_stopping_threshold=early_stopping_threshold)
        self.min_steps = min_steps

    def state(self) -> dict:
        """``EarlyStoppingCallback``'s checkpointed state plus ``min_steps``: Trainer rebuilds the callback from these
        ``args`` when it resumes with ``restore_callback_states_from_checkpoint``."""
        state = super().state()
        state["args"]["min_steps"] = self.min_steps
        return state

    def on_evaluate(self, args, state, control, metrics, **kwargs):
        stop_before = control.should_training_stop  # e.g. max_steps reached: not this callback's to undo
        super().on_evaluate(args, state, control, metrics, **kwargs)
        if state.global_step < self.min_steps and not stop_before:
            control.should_training_stop = False


class TargetPriorMatchingCallback(TrainerCallback):
    """When training ends (after the best checkpoint is loaded, before the final evaluation and saving), shift the
    task model's head bias so that its mean prediction on the unlabelled target rows equals ``prior``
    (:func:`~hfadapt.modeling.prior_matching.match_target_prior`; ``AdaptConfig.target_prior_matching``).

    Args:
        target_rows: the unlabelled target rows, holding the model's input columns.
        collator: pads a list of rows into a batch.
        model_inputs: the input columns the task model reads.
        prior: ``(C,)`` class probabilities, the source labels' class distribution.

    Every process of a distributed run computes the same shift from all the rows, so their weights stay equal.
    """

    def __init__(self, target_rows: datasets.Dataset, collator, model_inputs: Sequence[str], prior: torch.Tensor):
        self.target_rows, self.collator, self.model_inputs, self.prior = target_rows, collator, model_inputs, prior
        self.shift: torch.Tensor | None = None
        """The ``(C,)`` logit shift added to the head's bias, once training has ended."""

    def on_train_end(self, args, state, control, model=None, **kwargs):
        task_model = unwrap_peft(getattr(model, "task_model", model))
        self.shift = match_target_prior(task_model, self.target_rows, self.collator, self.model_inputs, self.prior,
                                        batch_size=args.per_device_eval_batch_size)
        logger.info("target prior matching: added %s to the head's bias", [round(float(v), 4) for v in self.shift])
