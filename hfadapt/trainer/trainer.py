"""`AdaptTrainer`: a `transformers.Trainer` that adapts a classifier from a labelled source domain to an
unlabelled target domain."""

from __future__ import annotations

import functools
import math
import os
from collections import defaultdict

import datasets
import torch
from torch import nn
from transformers import (
    DataCollatorWithPadding,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    default_data_collator,
    set_seed,
)

from ..data.mixing import DOMAIN_COLUMN, LABEL_COLUMNS, build_training_set, label_ids, model_input_names
from ..data.sampler import DomainBalancedSampler, row_sample
from ..data.transforms import keep_only, raw, transform_of
from ..fusion.ema import WeightEMACallback
from ..methods import build_methods
from ..methods.grl import GRL_SCHEDULES
from ..modeling.heads import has_batch_norm, unwrap_peft
from ..modeling.inference import dataset_features
from ..modeling.model import AdaptModel
from ..modeling.objective import TaskObjective, objective_for
from ..modeling.prior_matching import class_prior
from ..modeling.source_weighting import proximity_weights
from ..selection.callback import LabelFreeValidationCallback
from ..utils.peft_utils import is_peft_model, lora_config_from, save_task_model, wrap_with_peft
from ..utils.rng import stream_seed
from .callbacks import AdaptationScheduleCallback, MinStepsEarlyStoppingCallback, TargetPriorMatchingCallback
from .checkpointing import ResumableCheckpointsMixin, save_folder_atomically
from .config import AdaptConfig
from .fingerprint import run_fingerprint
from .model_card import ModelCardMixin
from .pretraining import check_tapt_tokenizer, pretrain_on_target
from .setup import (
    check_datasets,
    check_model,
    check_stored_inputs,
    eval_sets,
    named_evals,
    named_sources,
    probe_datasets,
    probe_feature_dim,
)


class AdaptTrainer(ResumableCheckpointsMixin, ModelCardMixin, Trainer):
    """Trainer for unsupervised domain adaptation of a classification model.

    Each training batch holds source and target rows in the proportion ``args.target_fraction``; one forward
    runs over both; the task loss (cross-entropy) uses the labelled source rows; each alignment method of
    ``args.method`` (DANN, MK-MMD, ...) compares source and target features. The loss components
    (``loss_task``, ``loss_dann``, ``loss_mmd``, ``dann_accuracy``, ``dann_lambda``) are logged, averaged over
    the steps since the last log and over processes.

    Args:
        model: an ``AutoModelForSequenceClassification`` (or image classification) model, or a PEFT model.
        args: an :class:`~hfadapt.AdaptConfig`.
        train_dataset: labelled **source** rows: model inputs (``input_ids``, ...) and ``label``/``labels``; or a
            dict ``{domain_name: Dataset}`` of several source domains (multi-source adaptation: every batch holds
            rows of each, the task loss is ``sum_d lambda_d L_d`` with ``lambda_d`` from
            ``args.source_weighting``, DANN's discriminator tells all domains apart, and ``loss_task_<name>`` and
            ``accuracy_<name>`` are logged per source domain).
        target_dataset: **unlabelled target** rows: model inputs. A label column, if present, is dropped before
            training: no loss ever sees a target label.
        eval_dataset: a dataset or a dict of them (e.g. ``{"source_val": ..., "target_test": ...}``, giving
            ``eval_target_test_accuracy``); labelled.
        peft_config: a ``peft`` config to wrap the model with; ``args.use_peft`` builds a LoRA one otherwise.
        processing_class, data_collator, compute_metrics, callbacks, **kwargs: as for ``Trainer``. The default
            collator pads dynamically with ``processing_class`` when it is a tokenizer.

    Raises (in ``__init__``, before any training):
        TypeError: wrong argument types.
        ValueError: an empty domain, a missing model-input or label column, source labels outside the model's
            ``num_labels``, eval label sets that differ from the source's, a regression model, a task head other
            than sequence or image classification, token ids outside the vocabulary or NaN inputs in any set, rows
            of the target or an eval set that the model cannot run (:mod:`hfadapt.trainer.preflight`).

    Evaluation raises ``ValueError`` on a NaN or infinite input and ``FloatingPointError`` on a NaN loss or logit,
    naming the eval set. Checkpoints carry the run's fingerprint and a sha256 manifest; resuming verifies both
    (:mod:`hfadapt.trainer.checkpointing`).

    The model ``save_model`` writes is the plain task model (merged, for PEFT, unless ``args.peft_save ==
    "adapter"``): ``AutoModelForSequenceClassification.from_pretrained(output_dir)`` loads it without hfadapt.
    The discriminator and other heads are training-only and are not saved with it. With ``args.weight_ema_decay`` the
    task model's trainable weights are replaced by their moving average when training ends
    (:class:`~hfadapt.fusion.WeightEMACallback`).

    >>> trainer = AdaptTrainer(model, AdaptConfig("out", method="dann"), train_dataset=source_train,
    ...                        target_dataset=target_unlabelled, eval_dataset={"target": target_test},
    ...                        processing_class=tokenizer)  # doctest: +SKIP
    >>> trainer.train()  # doctest: +SKIP
    """

    # compute_loss returns a per-batch mean: Trainer divides it by the gradient-accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        model: PreTrainedModel | nn.Module,
        args: AdaptConfig,
        train_dataset: datasets.Dataset,
        target_dataset: datasets.Dataset,
        eval_dataset: datasets.Dataset | dict[str, datasets.Dataset] | None = None,
        processing_class=None,
        data_collator=None,
        compute_metrics=None,
        callbacks=None,
        peft_config=None,
        **kwargs,
    ):
        # The steps in order: refuse bad input before any work, wrap with PEFT before fingerprinting, probe the
        # model for the feature width the methods' heads are built for, then hand over to Trainer.
        num_labels = check_model(args, model)
        objective = objective_for(unwrap_peft(model).config)
        model_inputs = model_input_names(model)
        sources, evals = named_sources(train_dataset), named_evals(eval_dataset)
        self._check_datasets(args, model, num_labels, objective, sources, target_dataset, evals, model_inputs)
        if args.target_prior_matching and objective.label_columns:
            raise ValueError("target_prior_matching shifts the bias of one classification head, and this model has "
                             f"the task heads {sorted(objective.label_columns)} besides: turn it off")
        if args.tapt_steps:
            check_tapt_tokenizer(processing_class)
        evals = eval_sets(evals, [*model_inputs, *LABEL_COLUMNS, *objective.label_columns])
        if eval_dataset is not None:
            eval_dataset = evals if isinstance(eval_dataset, dict) else evals["eval"]
        mixed = self._mix_domains(sources, target_dataset, model_inputs, objective)
        model = self._apply_peft(model, args, peft_config)
        self.run_fingerprint = run_fingerprint(args, model, sources, target_dataset)
        """What a checkpoint must share with this run to be resumed (:mod:`hfadapt.trainer.fingerprint`)."""
        data_collator = self._choose_collator(data_collator, processing_class)
        adapt_model = self._adaptation_model(model, args, sources, objective)
        feature_dim = self._probe(adapt_model, sources, target_dataset, evals, data_collator, model_inputs, num_labels)
        self.source_domain_distances = self._weight_sources(adapt_model, args, sources, target_dataset,
                                                            data_collator, model_inputs)
        """With ``source_weighting="auto"`` over several sources, each source's MMD^2 to the target, else ``None``
        (:func:`~hfadapt.modeling.source_weighting.proximity_weights`)."""
        self._build_methods(adapt_model, args, model, processing_class, feature_dim, num_labels)

        super().__init__(
            model=adapt_model,
            args=args,
            train_dataset=mixed,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            data_collator=data_collator,
            compute_metrics=compute_metrics,
            callbacks=callbacks,
            **kwargs,
        )
        self._components: dict[str, list[torch.Tensor]] = defaultdict(list)
        self.label_free = None
        """The :class:`~hfadapt.selection.selection.LabelFreeValidation` of ``args.label_free_validators``, scored
        at every evaluation (or, with ``args.label_free_strategy="end"``, after training) by a
        :class:`~hfadapt.selection.callback.LabelFreeValidationCallback`."""
        self.card_details: dict = {}
        """What the model card needs beyond the trainer's own knowledge (see :meth:`create_model_card`)."""
        self._add_callbacks(args, adapt_model, evals, isinstance(eval_dataset, dict), target_dataset, data_collator,
                            model_inputs)
        self._prior_matching = self._add_prior_matching(args, sources, target_dataset, data_collator, model_inputs,
                                                        num_labels)
        self._tapt_rows = target_dataset if args.tapt_steps else None
        self.tapt_loss: list[float] | None = None
        """With ``args.tapt_steps``, the masked-LM loss (nats) of the TAPT steps :meth:`train` ran first."""

    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, **kwargs):
        """With ``args.tapt_steps``: first the TAPT steps on the target rows
        (:func:`~hfadapt.trainer.pretraining.pretrain_on_target`; once per trainer, and not when resuming a
        checkpoint, whose weights are past them); then ``Trainer.train`` through
        :meth:`ResumableCheckpointsMixin.train` (its errors)."""
        if self._tapt_rows is not None and resume_from_checkpoint in (None, False):
            self.tapt_loss = pretrain_on_target(unwrap_peft(self.adapt_model.task_model), self._tapt_rows,
                                                self.processing_class, self.args)
        self._tapt_rows = None
        return super().train(resume_from_checkpoint=resume_from_checkpoint, trial=trial, **kwargs)

    # ---- the steps of __init__, in order -------------------------------------------------------------------

    @staticmethod
    def _check_datasets(args, model, num_labels: int, objective: TaskObjective, sources, target, evals,
                        model_inputs) -> None:
        """Every check of the datasets that must fail before training: columns, label sets and the objective's
        label columns (:func:`~hfadapt.trainer.setup.check_datasets`), then every stored row's token ids and float
        values
        (:func:`~hfadapt.trainer.setup.check_stored_inputs`).

        Raises:
            ValueError: naming the set, the column or the row at fault.
        """
        check_datasets(args, num_labels, objective.label_columns, sources, target, evals, model_inputs)
        check_stored_inputs(model, sources, target, evals, model_inputs)

    def _mix_domains(self, sources, target, model_inputs, objective: TaskObjective) -> datasets.Dataset:
        """The training set: the source domains' and the target's rows with a ``domain`` id column, cut to the
        model inputs, the labels and the objective's label columns (:func:`~hfadapt.data.mixing.build_training_set`);
        remembers the columns a batch keeps."""
        self._model_input_names = model_inputs
        self._extra_task_columns = list(objective.label_columns)
        return build_training_set(list(sources.values()), target, model_inputs,
                                  extra_label_columns=self._extra_task_columns)

    @staticmethod
    def _apply_peft(model, args: AdaptConfig, peft_config):
        """The model wrapped with ``peft_config`` (``args.use_peft`` builds a LoRA one when none is given); a PEFT
        model or a run without PEFT is returned as it is."""
        if peft_config is None and args.use_peft:
            peft_config = lora_config_from(args)
        if peft_config is not None and not is_peft_model(model):
            model = wrap_with_peft(model, peft_config)
        return model

    @staticmethod
    def _choose_collator(data_collator, processing_class):
        """The given collator; else dynamic padding with a tokenizer, ``default_data_collator`` otherwise."""
        if data_collator is not None:
            return data_collator
        if isinstance(processing_class, PreTrainedTokenizerBase):
            return DataCollatorWithPadding(processing_class)
        return default_data_collator

    @staticmethod
    def _adaptation_model(model, args: AdaptConfig, sources, objective: TaskObjective) -> AdaptModel:
        """The :class:`AdaptModel` around the task model, with no methods yet: one domain id per source, then the
        target's."""
        # With batch normalisation the target rows of a batch would shape the baseline's statistics (AdaBN, Li et
        # al. 2016): it would not be source-only any more, so it skips them; a method's batch keeps its rows together.
        batch_norm = has_batch_norm(model)
        return AdaptModel(model, feature_source=args.feature_source, num_domains=len(sources) + 1,
                          domain_names=[*sources, "target"],
                          skip_target_rows=not args.source_only_full_batch or batch_norm,
                          target_rows_apart=not batch_norm,
                          alignment_balancing=args.alignment_balancing,
                          method_seed=stream_seed(args.seed, args.process_index), objective=objective)

    @staticmethod
    def _probe(adapt_model: AdaptModel, sources, target, evals, collator, model_inputs, num_labels: int) -> int:
        """Run the model on rows of every set (:mod:`hfadapt.trainer.setup.probe`); return the feature width ``F``.

        Raises:
            ValueError: rows of a set that the model or the collator cannot take, naming the set.
        """
        feature_dim = probe_feature_dim(adapt_model, next(iter(sources.values())), collator, model_inputs)
        probe_datasets(adapt_model, sources, target, evals, collator, model_inputs, num_labels)
        return feature_dim

    @staticmethod
    def _weight_sources(adapt_model: AdaptModel, args: AdaptConfig, sources, target, collator,
                        model_inputs) -> list[float] | None:
        """Set ``lambda_d`` of each source domain in the task loss: ``args.source_domain_weights`` with
        ``source_weighting="fixed"``; with ``"auto"`` and several sources, from each source's feature distance to
        the target (:func:`~hfadapt.modeling.source_weighting.proximity_weights`), which is returned (else ``None``)."""
        if args.source_weighting == "fixed":
            adapt_model.set_source_domain_weights(args.source_domain_weights)
        elif args.source_weighting == "auto" and len(sources) > 1:
            n = args.source_weighting_samples
            features = [dataset_features(adapt_model, row_sample(ds, n, args.seed), collator, model_inputs, n)
                        for ds in (*sources.values(), target)]
            weights, distances = proximity_weights(features[:-1], features[-1], args.mmd_kernel_multipliers)
            adapt_model.set_source_domain_weights(weights)
            return distances
        return None

    @staticmethod
    def _build_methods(adapt_model: AdaptModel, args: AdaptConfig, model, processing_class, feature_dim: int,
                       num_labels: int) -> None:
        """Build the alignment methods of ``args.method`` for ``(N, feature_dim)`` features, bind them to the task
        model and its processor, and put them and their loss weights into ``adapt_model``.

        Raises:
            ValueError: a method that cannot work with this model or processor (e.g. UDALM without a tokenizer).
        """
        num_domains = adapt_model.num_domains
        set_seed(args.seed)  # heads start the same in every run with this seed
        methods = build_methods(args, feature_dim, num_domains=num_domains, num_classes=num_labels)
        for method in methods.values():
            method.bind(model, processing_class)
        adapt_model.methods.update(methods)
        adapt_model.method_weights = {name: args.method_weight(name) for name in methods}

    def _add_callbacks(self, args: AdaptConfig, adapt_model: AdaptModel, evals, evals_by_name: bool, target,
                       collator, model_inputs) -> None:
        """Add, in this order: the schedules of the GRL coefficient, the loss-weight factor and training progress;
        early stopping; label-free validation; the weight EMA of the task model.

        Raises:
            ValueError: ``args.label_free_validators`` without the labelled source-validation set among ``evals``.
        """
        grl = functools.partial(GRL_SCHEDULES[args.grl_schedule], max_lambda=args.grl_max_lambda, gamma=args.grl_gamma)
        weights = functools.partial(GRL_SCHEDULES[args.weight_schedule], max_lambda=1.0, gamma=args.grl_gamma)
        self.add_callback(
            AdaptationScheduleCallback(
                (adapt_model.set_grl_coefficient, grl),
                (adapt_model.set_weight_factor, weights),
                (adapt_model.set_progress, float),
            )
        )
        if args.early_stopping_patience:
            self.add_callback(MinStepsEarlyStoppingCallback(args.early_stopping_patience,
                                                            args.early_stopping_min_steps))
        if args.label_free_validators:
            split = args.label_free_source_split
            if split not in evals:
                raise ValueError(f"label_free_validators need a labelled source-validation set: pass "
                                 f"eval_dataset={{'{split}': source_val, ...}} (or set label_free_source_split)")
            callback = LabelFreeValidationCallback(
                evals[split], keep_only(target, model_inputs), collator, args.label_free_validators,
                args.label_free_max_rows, model_inputs, eval_name=split if evals_by_name else None,
                strategy=args.label_free_strategy)
            self.add_callback(callback)
            self.label_free = callback.validation
        if args.weight_ema_decay is not None:  # the EMA covers the task model only, not the training-only heads
            self.add_callback(WeightEMACallback(args.weight_ema_decay, module=adapt_model.task_model))

    def _add_prior_matching(self, args: AdaptConfig, sources, target, collator, model_inputs,
                            num_labels: int) -> TargetPriorMatchingCallback | None:
        """With ``args.target_prior_matching``, add (last, after the weight EMA) the callback that matches the
        model's target predictions to the source labels' class distribution when training ends."""
        if not args.target_prior_matching:
            return None
        callback = TargetPriorMatchingCallback(keep_only(target, model_inputs), collator, model_inputs,
                                               class_prior(label_ids(sources.values()), num_labels))
        self.add_callback(callback)
        return callback

    @property
    def target_prior_shift(self) -> list[float] | None:
        """With ``args.target_prior_matching``, the ``(C,)`` logit shift added to the head's bias when training
        ended (``None`` before, or without it)."""
        shift = None if self._prior_matching is None else self._prior_matching.shift
        return None if shift is None else [float(v) for v in shift]

    # ---- Trainer overrides -----------------------------------------------------------------------------------

    @property
    def source_domain_weights(self) -> dict[str, float]:
        """``lambda_d`` of each source domain in the task loss (normalised to sum 1)."""
        model = self.adapt_model
        return dict(zip(model.domain_names[:-1], model.source_domain_weights, strict=True))

    @property
    def adapt_model(self) -> AdaptModel:
        """The :class:`AdaptModel` under any DDP/accelerate wrapper."""
        return self.accelerator.unwrap_model(self.model)

    def _set_signature_columns_if_needed(self):
        # Keep the task model's inputs plus labels and the domain id (Trainer would read AdaptModel's signature).
        if self._signature_columns is None:
            self._signature_columns = [*self._model_input_names, *LABEL_COLUMNS, *self._extra_task_columns,
                                       DOMAIN_COLUMN]

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        batch_size = self._train_batch_size
        return DomainBalancedSampler(
            list(raw(dataset)[DOMAIN_COLUMN]),
            batch_size=batch_size,
            n_source=self.args.source_per_batch(batch_size),
            target_domain=self.adapt_model.target_domain,
            seed=self.args.seed,
            lengths=self._row_lengths(dataset) if self.args.train_sampling_strategy == "group_by_length" else None,
        )

    def _row_lengths(self, dataset) -> list[int]:
        """Tokens per training row, for ``train_sampling_strategy="group_by_length"``."""
        columns = raw(dataset).column_names
        name = next((n for n in ("input_ids", "input_values") if n in columns), None)
        if name is None:
            raise ValueError(f"train_sampling_strategy='group_by_length' groups token sequences by length, but the "
                             f"training rows have no input_ids (columns {columns}); use 'random' for this data")
        return [len(row) for row in raw(dataset)[name]]

    def _remove_unused_columns(self, dataset, description=None):
        # A lazily transformed set stores raw columns (``image``) that its transform turns into model inputs: its
        # rows are already cut to model inputs and labels (DomainTransform / keep_only), so nothing is removed.
        if transform_of(dataset) is not None:
            return dataset
        return super()._remove_unused_columns(dataset, description)

    def create_optimizer(self, model=None):
        """AdamW (or ``args.optim``) with the usual weight-decay split; the alignment heads (discriminator) get
        ``learning_rate * discriminator_lr_multiplier`` as their own parameter groups."""
        if self.optimizer is not None:
            return self.optimizer
        opt_model = self.model if model is None else model
        decay = set(self.get_decay_parameter_names(opt_model))
        groups: dict[tuple[bool, bool], list[nn.Parameter]] = defaultdict(list)
        for name, param in opt_model.named_parameters():
            if param.requires_grad:
                is_head = name.startswith("methods.") or ".methods." in name
                groups[(is_head, name in decay)].append(param)
        param_groups = []
        for (is_head, decays), params in groups.items():
            group = {"params": params, "weight_decay": self.args.weight_decay if decays else 0.0}
            if is_head:
                group["lr"] = self.args.learning_rate * self.args.discriminator_lr_multiplier
            param_groups.append(group)
        optimizer_cls, optimizer_kwargs = self.optimizer_cls_and_kwargs or self.get_optimizer_cls_and_kwargs(
            self.args, opt_model
        )
        self.optimizer = optimizer_cls(param_groups, **optimizer_kwargs)
        return self.optimizer

    # ---- loss and logging ----------------------------------------------------------------------------------

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Forward source+target rows once; return the weighted sum of the task and alignment losses.

        Raises:
            FloatingPointError: on a NaN or infinite loss in training, naming the components that went bad,
                before the optimizer step could spread it into the weights.
        """
        outputs = model(**inputs)
        loss = outputs.loss
        if model.training and outputs.components is not None:
            if not torch.isfinite(loss):
                bad = {k: float(v) for k, v in outputs.components.items() if not math.isfinite(float(v))}
                raise FloatingPointError(
                    f"non-finite training loss at optimizer step {self.state.global_step} (components: "
                    f"{ {k: round(float(v), 4) for k, v in outputs.components.items()} }, non-finite: {sorted(bad)}). "
                    "Lower learning_rate, the method weights or grl_max_lambda, or set max_grad_norm; "
                    "with fp16, try bf16."
                )
            for key, value in outputs.components.items():
                self._components[key].append(value)
        return (loss, outputs) if return_outputs else loss

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                        metric_key_prefix="eval"):
        """Trainer's, remembering which eval set runs (``eval_<name>``) so that a NaN can be reported by name."""
        self._eval_set_name = metric_key_prefix.removeprefix("eval_") if metric_key_prefix != "eval" else "eval"
        return super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Trainer's, refusing non-finite inputs, loss or logits: a NaN ``eval_loss`` beside a plausible
        ``eval_accuracy`` (argmax of NaN logits) would pass for a result.

        Raises:
            ValueError: a float input (``pixel_values``, ...) of the batch holds NaN or inf, naming the eval set.
            FloatingPointError: the loss or the logits hold NaN or inf, naming the eval set.
        """
        name = getattr(self, "_eval_set_name", "eval")
        for key, value in inputs.items():
            if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all():
                raise ValueError(f"eval set {name!r}: input {key!r} holds NaN or infinite values; the model cannot be "
                                 "scored on it (check the data processing of this set)")
        loss, logits, labels = super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        outputs = [("loss", loss), *((("logits", t) for t in logits) if isinstance(logits, tuple | list)
                                     else [("logits", logits)])]
        for what, value in outputs:
            if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all():
                raise FloatingPointError(
                    f"eval set {name!r}: the model's {what} holds NaN or infinite values at optimizer step "
                    f"{self.state.global_step}; its metrics would be meaningless (a NaN loss beside an accuracy "
                    "taken from the argmax of NaN logits)")
        return loss, logits, labels

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the loss components, averaged over the steps since the last log and over processes."""
        if "loss" in logs and self._components:
            for key, values in self._components.items():
                mean = torch.stack(values).float().mean()
                if self.accelerator.num_processes > 1:
                    mean = self.accelerator.reduce(mean.to(self.accelerator.device), reduction="mean")
                logs[key] = round(mean.item(), 4)
            self._components.clear()
        super().log(logs, start_time)

    def domain_features(self, source: datasets.Dataset, target: datasets.Dataset,
                        max_rows: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
        """The features the alignment heads read, ``(n_s, F)`` and ``(n_t, F)``, on the first ``max_rows`` rows
        of ``source`` and of ``target`` in eval mode (model inputs only; labels are not read); pass
        :func:`~hfadapt.data.sampler.row_sample` subsets for random rows."""
        return tuple(dataset_features(self.adapt_model, keep_only(ds, self._model_input_names), self.data_collator,
                                      self._model_input_names, max_rows) for ds in (source, target))

    # ---- saving --------------------------------------------------------------------------------------------

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        """Write the task model only (merged for PEFT unless ``peft_save="adapter"``) and its processor.

        Unlike Trainer, no ``training_args.bin``: a pickle of the arguments holds ``hub_token`` and local paths and
        would be pushed with the model; the model card records the settings instead.

        Outside a checkpoint the files are written next to ``output_dir`` first and moved in with a sha256 manifest,
        the manifest last (:func:`~hfadapt.trainer.checkpointing.save_folder_atomically`): a save killed half-way
        leaves a
        folder that :func:`~hfadapt.trainer.integrity.verify_manifest` refuses, never one that passes for complete."""
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)

        def write(folder: str) -> None:
            save_task_model(self.adapt_model.task_model, folder, self.args.peft_save)
            if self.processing_class is not None:
                self.processing_class.save_pretrained(folder)

        if getattr(self, "_staging_root", None) is not None:
            write(output_dir)  # inside a staged checkpoint, which gets its manifest once complete
        else:
            save_folder_atomically(output_dir, write)
