"""Trainer callbacks that hold adaptation state the model must not advance itself."""

from __future__ import annotations

from collections.abc import Callable

from transformers import TrainerCallback


class GRLScheduleCallback(TrainerCallback):
    """Sets the gradient-reversal coefficient once per optimizer step, before its first micro-batch.

    ``lambda = schedule(p)`` with ``p = state.global_step / state.max_steps`` (optimizer steps done over total),
    so the coefficient is the same for every micro-batch of an accumulation cycle, evaluation does not move it,
    and a resumed run (which restores ``global_step``) continues where it stopped.

    Args:
        set_coefficient: called with the new ``lambda`` (e.g. ``AdaptModel.set_grl_coefficient``).
        schedule: ``schedule(progress) -> lambda`` (see :mod:`hfadapt.grl`).
    """

    def __init__(self, set_coefficient: Callable[[float], None], schedule: Callable[[float], float]):
        self.set_coefficient = set_coefficient
        self.schedule = schedule

    def progress(self, state) -> float:
        """Fraction of optimizer steps done, in ``[0, 1]``."""
        return state.global_step / state.max_steps if state.max_steps else 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.set_coefficient(self.schedule(self.progress(state)))

    def on_step_begin(self, args, state, control, **kwargs):
        self.set_coefficient(self.schedule(self.progress(state)))
