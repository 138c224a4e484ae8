"""The task side of :class:`~hfadapt.modeling.model.AdaptModel`'s loss: which labels a batch carries and how the task
losses combine.

:class:`TaskObjective` is the hook: the adaptation model calls it at three points of every forward, and the trainer
asks it which label columns the data must carry. The default is the single-task objective (one ``labels`` column,
``L_task`` the cross-entropy of ``outputs.logits``); a model family with its own objective registers it by its
config's ``model_type`` with :func:`register_objective` (the multi-task model does so in
:mod:`hfadapt.modeling.multitask`),
and :func:`objective_for` picks it through that mapping.

The objective only chooses and combines; the cross-entropy over the labelled source rows (per source domain,
instance-weighted) stays with the adaptation model, which hands it to :meth:`TaskObjective.task_loss` as
``cross_entropy``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

CrossEntropy = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]
"""``cross_entropy(logits (N, C), labels (N,), task=None) -> (scalar loss, components)``: the adaptation model's
task loss over the labelled source rows of the batch; ``task`` names a task in the logged component keys."""


class TaskObjective:
    """The single-task objective, and the interface of every objective.

    Called by :class:`~hfadapt.modeling.model.AdaptModel` at defined points of ``forward``:

    1. :meth:`split_labels` before the forward, to take the objective's own label columns out of the model inputs;
    2. :meth:`task_loss` after it, to turn the outputs and labels into the task loss (training and evaluation);
    3. :meth:`penalties` in training, for terms added to the loss besides the task and alignment losses.

    :attr:`label_columns` tells :class:`~hfadapt.AdaptTrainer` which columns beyond ``label``/``labels`` the source
    rows must carry and keep.
    """

    @property
    def label_columns(self) -> dict[str, int]:
        """``{column: num_labels}`` of the label columns beyond ``label``/``labels`` (none for one task)."""
        return {}

    def split_labels(self, inputs: dict) -> tuple[dict, dict[str, torch.Tensor]]:
        """Take this objective's label columns out of a batch's model inputs.

        Returns:
            ``(inputs, task_labels)``: the inputs left for the model and ``{column: (N,) long}`` (empty here).
        """
        return inputs, {}

    def task_loss(self, outputs, labels: torch.Tensor, task_labels: dict[str, torch.Tensor],
                  cross_entropy: CrossEntropy) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The task loss of a batch: ``cross_entropy(outputs.logits, labels)``.

        Args:
            outputs: the task model's output (``logits (N, C)``).
            labels: ``(N,)`` long, -100 on unlabelled rows.
            task_labels: what :meth:`split_labels` took out (unused here).
            cross_entropy: see :data:`CrossEntropy`.

        Returns:
            ``(loss, components)``: the scalar loss and detached scalars to log.
        """
        return cross_entropy(outputs.logits, labels)

    def penalties(self, outputs) -> dict[str, torch.Tensor]:
        """Scalars added to the training loss after the task loss, each logged as ``loss_<name>`` (none here)."""
        return {}


ObjectiveFactory = Callable[..., TaskObjective]
"""Builds an objective from a task model's config: ``factory(config) -> TaskObjective``."""

_OBJECTIVES: dict[str, ObjectiveFactory] = {}


def register_objective(model_type: str, factory: ObjectiveFactory) -> None:
    """Make :func:`objective_for` build ``factory(config)`` for models whose ``config.model_type`` is
    ``model_type``; registering the same name again replaces the factory (a module imported twice)."""
    _OBJECTIVES[model_type] = factory


def objective_for(config) -> TaskObjective:
    """The objective of a task model with this config: its family's registered one, else :class:`TaskObjective`.

    Args:
        config: the (PEFT-unwrapped) task model's ``PretrainedConfig``.
    """
    factory = _OBJECTIVES.get(config.model_type)
    return factory(config) if factory is not None else TaskObjective()
