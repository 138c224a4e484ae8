"""Label-free model selection as a ``TrainerCallback``: every evaluation scored by validators, for
``transformers.Trainer`` as for :class:`~hfadapt.AdaptTrainer`."""

from __future__ import annotations

from collections.abc import Sequence

import datasets
from transformers import TrainerCallback

from ..data.mixing import model_input_names
from ..data.transforms import keep_only, transform_of
from ..modeling.features import HeadInputReader
from .selection import LabelFreeValidation

LABEL_FREE_STRATEGIES = ("every_eval", "end")
"""When the validators are scored: at every evaluation, or only at evaluations after training."""


class LabelFreeValidationCallback(TrainerCallback):
    """Scores every evaluation with label-free validators and adds ``eval_<validator>`` to its metrics (and to
    ``state.log_history``), so ``metric_for_best_model="<validator>"`` with ``load_best_model_at_end=True`` keeps
    the checkpoint the validator prefers: model selection without target labels (Musgrave, Belongie, Lim,
    "Unsupervised Domain Adaptation: A Reality Check", 2021, compare such validators).

    >>> trainer = Trainer(model, TrainingArguments(..., eval_strategy="steps", metric_for_best_model="im",
    ...                   load_best_model_at_end=True), eval_dataset=source_val, ...)      # doctest: +SKIP
    >>> trainer.add_callback(LabelFreeValidationCallback(source_val, target, collator, ["im", "dev"]))  # doctest: +SKIP

    The features are those the classification head reads (an :class:`~hfadapt.modeling.model.AdaptModel` is read as
    configured). Scoring runs once per evaluation: on the evaluation of a single eval set, or, with a dict of eval
    sets, on the evaluation of the one named ``eval_name``; with ``strategy="end"``, only on evaluations after
    training (between ``on_train_begin`` and ``on_train_end`` none is scored). :class:`~hfadapt.AdaptTrainer` adds
    one itself when ``AdaptConfig.label_free_validators`` is set.

    Args:
        source_val: labelled source-validation rows (model inputs and ``label``/``labels``).
        target: unlabelled target rows; only model-input columns are ever read, so a label column is never seen.
        collator: the data collator of the trainer (e.g. ``DataCollatorWithPadding(tokenizer)``).
        validators: names from :data:`hfadapt.selection.VALIDATORS`.
        max_rows: rows used from each set (a seeded random sample).
        model_inputs: input column names; default: the parameters of the model's ``forward`` (minus labels).
        eval_name: the eval set whose evaluation triggers scoring when ``eval_dataset`` is a dict.
        strategy: ``"every_eval"`` (every evaluation) or ``"end"`` (only evaluations outside training: a run that
            chooses checkpoints by source validation skips a forward pass over both sets at each evaluation).

    Raises:
        ValueError: on an unknown validator or ``strategy``, or a source set without labels (at construction when
            ``model_inputs`` is given, else at the first evaluation).
    """

    def __init__(self, source_val: datasets.Dataset, target: datasets.Dataset, collator, validators: Sequence[str],
                 max_rows: int = 1000, model_inputs: Sequence[str] | None = None, eval_name: str | None = None,
                 strategy: str = "every_eval"):
        if strategy not in LABEL_FREE_STRATEGIES:
            raise ValueError(f"strategy must be one of {LABEL_FREE_STRATEGIES}, got {strategy!r}")
        self._data = (source_val, target, collator, list(validators), max_rows)
        self.eval_name = eval_name
        self.strategy = strategy
        self._training = False
        self.validation: LabelFreeValidation | None = None
        """The scorer (its ``history`` holds every evaluation's scores); built once the model inputs are known."""
        if model_inputs is not None:
            self._build(model_inputs)

    def _build(self, model_inputs: Sequence[str]) -> LabelFreeValidation:
        source_val, target, collator, validators, max_rows = self._data
        if transform_of(target) is not None:  # a lazy transform makes the inputs from raw columns (``image``)
            target = keep_only(target, model_inputs)
        else:
            target = target.select_columns([c for c in target.column_names if c in model_inputs])
        self.validation = LabelFreeValidation(source_val, target, collator, model_inputs, validators, max_rows)
        return self.validation

    def on_train_begin(self, args, state, control, **kwargs):
        """Evaluations from here until :meth:`on_train_end` are during training."""
        self._training = True

    def on_train_end(self, args, state, control, **kwargs):
        """Evaluations from here on are after training (scored under either strategy)."""
        self._training = False

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        prefix = "eval" if self.eval_name is None else f"eval_{self.eval_name}"
        if metrics is None or model is None or f"{prefix}_runtime" not in metrics:
            return
        if self.strategy == "end" and self._training:
            return
        from ..modeling.model import AdaptModel

        if self.validation is None:
            self._build(model_input_names(model))
        reader = model if isinstance(model, AdaptModel) else HeadInputReader(model)
        scores = {f"eval_{name}": value for name, value in self.validation.scores(reader, state.global_step).items()}
        metrics.update(scores)
        state.log_history.append({**scores, "step": state.global_step})
