"""Trainer callbacks that hold adaptation state the model must not advance itself."""

from __future__ import annotations

from collections.abc import Callable

from transformers import TrainerCallback

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
            or ``(AdaptModel.set_weight_factor, ...)``; ``schedule(progress) -> value`` (see :mod:`hfadapt.grl`).
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
