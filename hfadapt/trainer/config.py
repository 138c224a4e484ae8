"""`AdaptConfig`: `TrainingArguments` plus what domain adaptation needs."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from ..methods.grl import GRL_SCHEDULES
from ..methods.registry import ALIGNMENT_METHODS, parse_method_names, setting_fields, settings_classes
from ..modeling.balancing import ALIGNMENT_BALANCINGS
from ..modeling.features import FEATURE_SOURCES
from ..selection import VALIDATORS
from ..selection.callback import LABEL_FREE_STRATEGIES
from ..utils.precision import resolve_bf16

PEFT_SAVE_MODES = ("merged", "adapter")
SOURCE_WEIGHTINGS = ("uniform", "fixed", "auto")
TRAIN_SAMPLING_STRATEGIES = ("random", "group_by_length")
"""``TrainingArguments.train_sampling_strategy`` values that keep the source/target proportion of every batch."""


def launched_on_cpus_only() -> bool:
    """Whether this process is one of several (``WORLD_SIZE > 1``) on a machine with no CUDA or other accelerator."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    return not has_accelerator()


def has_accelerator() -> bool:
    """Whether this process sees a CUDA GPU or another torch accelerator."""
    accelerator = getattr(torch, "accelerator", None)
    return accelerator.is_available() if accelerator is not None else torch.cuda.is_available()


@dataclass
class AdaptConfig(TrainingArguments):
    """Configuration of :class:`~hfadapt.AdaptTrainer`: every `TrainingArguments` field plus the alignment
    method, the settings every method shares (loss-weight schedule, balancing, label-free validation, batch
    composition, source weighting, PEFT), and the methods' own settings.

    A method's settings are declared beside its loss, as a dataclass registered with the method
    (``AlignmentMethod.settings_class``, :mod:`hfadapt.methods.registry`); this class knows none of them by name.
    They are given as keyword arguments (``mmd_weight=0.5``), as ``method_settings={"mmd_weight": 0.5}``, or as
    command-line flags and recipe keys of the same names (:func:`hfadapt.cli.args.parse_with_config`).
    ``__post_init__`` builds every registered settings object from them, so a recipe may carry the settings of
    methods the run does not use; they are validated all the same. After it, ``method_settings`` holds every
    registered setting's value, ``config.mmd_weight`` reads one, ``config.settings_of(MMDSettings)`` gives a
    method its settings object, and :meth:`to_dict` lists them flat, as fields.

    Every field carries ``metadata={"help": ...}`` so ``HfArgumentParser`` prints a real ``--help``.

    Raises:
        ValueError: from ``__post_init__`` when a value is out of range, naming the field, or when
            ``method_settings`` names no registered setting.

    >>> cfg = AdaptConfig(output_dir="out", method="dann+mmd", mmd_weight=0.5)
    >>> cfg.method_names, cfg.mmd_weight
    (['dann', 'mmd'], 0.5)

    The method defaults are the recommended recipe, the one the benchmark supports
    (``hfadapt/cli/recipes/sentiment_transfer.yaml``, reasons in ``docs/recipes.md``):
    ``alignment_balancing="gradient"``,
    ``grl_max_lambda=0.1``, ``mmd_weight = jan_weight = coral_weight = 0.1``, ``iw_flattening=0.5``,
    ``udalm_weight=0.01``. An encoder trained from scratch wants Ganin et al.'s settings instead
    (``hfadapt/cli/recipes/digits_transfer.yaml``).

    Defaults that differ from `TrainingArguments`: ``label_names=["labels"]`` (the Trainer otherwise guesses
    from the forward signature), ``logging_steps=10``, ``save_strategy="no"``.
    """

    # --- method -------------------------------------------------------------------------------------------
    method: str = field(
        default="dann",
        metadata={
            "help": "Alignment method(s): a name registered in hfadapt.methods (e.g. 'dann', 'mmd', 'fixmatch'; "
            "--help lists each method's settings under its name), 'none' (source-only baseline), or several joined "
            "by '+' (e.g. 'dann+mmd', 'dann+fixmatch')."
        },
    )
    method_settings: dict | str | None = field(
        default_factory=dict,
        metadata={
            "help": "The methods' own settings as a mapping (or its JSON text), e.g. {\"mmd_weight\": 0.5}; each "
            "is also a keyword argument, flag and recipe key of its own name."
        },
    )
    weight_schedule: str = field(
        default="warm_start",
        metadata={
            "help": "Schedule of the loss weights of the non-adversarial methods (MMD, JAN, CORAL, MCC, entropy, IM, "
            "...): 'warm_start' ramps each weight from 0 to its <name>_weight as 2 / (1 + exp(-gamma * p)) - 1, the "
            "progressive strategy of JAN (Long et al., ICML 2017) after Ganin et al.; 'cosine_ramp' as "
            "1/2 - cos(min(pi, 2 pi p)) / 2, reaching the weight at p = 1/2 (AdaMatch's warm-up, Berthelot et al., "
            "ICLR 2022); 'constant' applies it from the first step. Adversarial methods (DANN, CDAN) ramp their "
            "gradient-reversal coefficient instead."
        },
    )

    alignment_balancing: str = field(
        default="gradient",
        metadata={
            "help": "How the weights of the methods whose loss scale follows the feature scale (MMD, JAN, CORAL) and "
            "the GRL coefficient of the adversarial ones (DANN, CDAN) are read: 'fixed' (L = L_task + sum_m w_m L_m, "
            "the reversed gradient lambda * dL_d/df) or 'gradient' (w_m is the share of the task loss's gradient "
            "norm on the features that method m gets, re-measured every step: w_m * ||dL_task/df|| / ||dL_m/df||; "
            "Esser et al., CVPR 2021; an adversarial method's reversed gradient gets lambda * w_m of the task's, its "
            "discriminator's gradient is unchanged). Bounded prediction losses (MCC, entropy, IM, FixMatch, AdaMatch, "
            "mean teacher) are not rebalanced."
        },
    )

    # --- label-free model selection ------------------------------------------------------------------------
    label_free_validators: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Validators scored at every evaluation without target labels (hfadapt.selection: entropy, im, "
            "snd, iwv, dev, source_val), logged as eval_<name>; metric_for_best_model=<name> keeps the best "
            "checkpoint by one of them."
        },
    )
    label_free_source_split: str = field(
        default="source_val",
        metadata={"help": "Name, in the eval_dataset dict, of the labelled source-validation set the validators read."},
    )
    label_free_max_rows: int = field(
        default=1000, metadata={"help": "Rows of the source-validation and target sets each validator reads."}
    )
    label_free_strategy: str = field(
        default="every_eval",
        metadata={
            "help": "When the validators are scored: 'every_eval' (at every evaluation, as "
            "metric_for_best_model=<name> and validator curves need) or 'end' (only at evaluations after training, "
            "such as the final one of hfadapt train: where checkpoints are chosen by source validation this saves a "
            "forward pass over label_free_max_rows source-validation and target rows at each evaluation)."
        },
    )

    # --- features and batches -----------------------------------------------------------------------------
    source_only_full_batch: bool = field(
        default=True,
        metadata={
            "help": "The source-only baseline ('none') runs the same forward over source and target rows as the "
            "methods (target rows get no loss), so it draws the same dropout masks and a method differs from it only "
            "by its loss: the comparison is paired. False skips the target rows (half the cost of the baseline). "
            "Models with batch normalisation always skip them: target rows in the batch statistics would adapt the "
            "baseline (AdaBN)."
        },
    )
    feature_source: str = field(
        default="head_input",
        metadata={
            "help": "Which features the alignment heads read: 'head_input' (the representation the classification "
            "head reads, e.g. BERT's pooled output) or 'mean_pooled' (mask-aware mean of the last hidden state)."
        },
    )
    target_fraction: float = field(
        default=0.5,
        metadata={
            "help": "Share of each training batch drawn from the unlabelled target set; the rest is labelled source. "
            "per_device_train_batch_size counts both."
        },
    )

    # --- several source domains ---------------------------------------------------------------------------
    source_weighting: str = field(
        default="uniform",
        metadata={
            "help": "Weights lambda_d of the source domains in the task loss sum_d lambda_d L_d (train_dataset given "
            "as a dict of domains): 'uniform'; 'fixed' (source_domain_weights, in the dict's order); or 'auto': "
            "lambda_d proportional to exp(-MMD_d / mean_k MMD_k), MMD_d the biased MK-MMD^2 between source d's and "
            "the target's features under the initial model (a closer source counts more). Normalised to sum 1."
        },
    )
    source_domain_weights: list[float] | None = field(
        default=None, metadata={"help": "lambda_d per source domain for source_weighting='fixed'."}
    )
    source_weighting_samples: int = field(
        default=256, metadata={"help": "Rows per domain whose features 'auto' source weighting compares."}
    )

    # --- convergence --------------------------------------------------------------------------------------
    early_stopping_patience: int = field(
        default=0,
        metadata={"help": "Stop training once metric_for_best_model (e.g. source_val_accuracy) has not improved "
                  "for this many evaluations (0: off); needs eval_strategy, save_strategy and "
                  "load_best_model_at_end, as transformers.EarlyStoppingCallback does."},
    )
    early_stopping_min_steps: int = field(
        default=0, metadata={"help": "Optimizer steps before early stopping may end training."}
    )

    # --- precision ----------------------------------------------------------------------------------------
    mixed_precision: str = field(
        default="no",
        metadata={
            "help": "Train under bf16 autocast: 'no' (fp32, unless bf16 is set), 'bf16', or 'auto': bf16 where the "
            "device multiplies bf16 natively (a CUDA GPU with bf16, a CPU with AVX512-BF16 or AMX), fp32 elsewhere. "
            "On a CPU it also sets use_cpu, which TrainingArguments needs for bf16 there."
        },
    )

    # --- two-stage adaptation -----------------------------------------------------------------------------
    adapt_from_source_only: bool = field(
        default=False,
        metadata={
            "help": "Start the method from the trained source-only baseline of the same run instead of the pretrained "
            "model: two-stage adaptation, as self-training is usually run (CBST, Zou et al., ECCV 2018), so that the "
            "first pseudo-labels come from a converged source model. The method then gets the baseline's budget "
            "again; needs the baseline (not with --baseline false)."
        },
    )

    # --- task-adaptive pretraining -----------------------------------------------------------------------
    tapt_steps: int = field(
        default=0,
        metadata={
            "help": "Masked-LM steps on the unlabelled target rows before training (TAPT, Gururangan et al., ACL "
            "2020), through BERT's MLM head built fresh over the encoder; 0 (default) = none. Text models only. "
            "An experiment's source-only baseline never gets them: it is what they are compared with. With "
            "method 'none' the run is TAPT then plain fine-tuning, recorded as 'tapt'."
        },
    )
    tapt_learning_rate: float = field(
        default=1e-4, metadata={"help": "Peak learning rate of the TAPT steps (Gururangan et al.'s 1e-4)."}
    )
    tapt_head_warmup: float = field(
        default=0.1,
        metadata={"help": "Share of the TAPT steps in which the fresh MLM head learns alone on a frozen encoder, so "
                  "that a random head's gradients do not reach the encoder (linear probing first, as LP-FT)."},
    )
    tapt_cache_dir: str | None = field(
        default=None,
        metadata={"help": "Folder that keeps the encoder's weights after TAPT, keyed by everything they depend on "
                  "(weights before, target rows, tokenizer, TAPT settings, seed): a later run with the same "
                  "inputs, of any method, loads them instead of pretraining again. None (default): not kept."},
    )

    # --- weight averaging ---------------------------------------------------------------------------------
    weight_ema_decay: float | None = field(
        default=None,
        metadata={
            "help": "Keep an exponential moving average of the task model's trainable weights, theta_ema <- d * "
            "theta_ema + (1 - d) * theta after every optimizer step (d warmed up as min(d, (1 + k) / (10 + k)) at "
            "update k), and write it into the model when training ends, so the saved model is the EMA model "
            "(hfadapt.fusion.WeightEMACallback). A decay in (0, 1), e.g. 0.999; None (default) = off. "
            "Checkpoints and evaluations during training see the raw weights."
        },
    )

    # --- after training ------------------------------------------------------------------------------------
    target_prior_matching: bool = field(
        default=False,
        metadata={
            "help": "When training ends, shift the classification head's bias so that the model's mean predicted "
            "class distribution on the unlabelled target rows equals the source labels' "
            "(hfadapt.modeling.prior_matching): the saved model predicts each class on the target as often as the "
            "source has it. Assumes the target's class distribution is the source's. Off by default."
        },
    )

    # --- PEFT ---------------------------------------------------------------------------------------------
    use_peft: bool = field(default=False, metadata={"help": "Train LoRA adapters instead of the whole backbone."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling alpha."})
    lora_dropout: float = field(default=0.1, metadata={"help": "Dropout on the LoRA path."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={"help": "Module names LoRA adapts (BERT: query value). Default: peft's choice for the model type."},
    )
    peft_save: str = field(
        default="merged",
        metadata={"help": "What save_model writes with PEFT: 'merged' (a plain model) "
                  "or 'adapter' (the LoRA adapter)."},
    )

    # --- output folder -------------------------------------------------------------------------------------
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Write into an output_dir that holds a previous run's results (results.json or a saved model "
            "folder), replacing them. Without it such a folder is refused before anything is trained or written "
            "(resume_from_checkpoint continues the run there instead)."
        },
    )

    # --- resuming ------------------------------------------------------------------------------------------
    resume_weights_only: bool = field(
        default=False,
        metadata={
            "help": "Resume from a checkpoint without its optimizer state (optimizer.pt): the weights, step count and "
            "random state are restored, the optimizer and the learning-rate schedule start afresh, so the run no "
            "longer matches an uninterrupted one. Without it a checkpoint lacking optimizer.pt is refused."
        },
    )

    # --- TrainingArguments defaults that differ -------------------------------------------------------------
    label_names: list[str] | None = field(
        default_factory=lambda: ["labels"], metadata={"help": "Label keys of a batch (hfadapt uses 'labels')."}
    )
    logging_steps: float = field(default=10, metadata={"help": "Log every X optimizer steps."})
    save_strategy: str = field(default="no", metadata={"help": "Checkpoint strategy ('no', 'steps', 'epoch')."})
    restore_callback_states_from_checkpoint: bool = field(
        default=True,
        metadata={"help": "On resume, restore the early-stopping patience counter (and Trainer's control flags) "
                  "from the checkpoint, so that a resumed run stops where the uninterrupted one would."},
    )

    def __post_init__(self):
        if not self.use_cpu and launched_on_cpus_only():
            # `accelerate launch --multi_gpu --num_processes N` on a machine without an accelerator: without
            # use_cpu, TrainingArguments sets up no process group and each process trains alone (accelerate 1.15).
            self.use_cpu = True
        if resolve_bf16(self.mixed_precision):  # raises on a value not in MIXED_PRECISIONS
            if self.fp16:
                raise ValueError(f"mixed_precision={self.mixed_precision!r} trains in bf16, which excludes fp16=True; "
                                 "set one of them")
            self.bf16 = True
            if not has_accelerator():
                self.use_cpu = True  # TrainingArguments refuses bf16 on a CPU without it
        super().__post_init__()
        if not isinstance(self.method, str):  # a YAML list: [dann, mmd]
            self.method = "+".join(str(m) for m in self.method)
        parse_method_names(self.method)  # raises on an unknown or repeated name
        self._build_method_settings()
        if self.weight_schedule not in GRL_SCHEDULES:
            raise ValueError(f"weight_schedule must be one of {sorted(GRL_SCHEDULES)}, got {self.weight_schedule!r}")
        unknown = [v for v in self.label_free_validators if v not in VALIDATORS]
        if unknown:
            raise ValueError(f"label_free_validators {unknown} are not registered; choose from {sorted(VALIDATORS)}")
        if self.label_free_max_rows < 2:
            raise ValueError(f"label_free_max_rows must be >= 2, got {self.label_free_max_rows}")
        if self.label_free_strategy not in LABEL_FREE_STRATEGIES:
            raise ValueError(f"label_free_strategy must be one of {LABEL_FREE_STRATEGIES}, got "
                             f"{self.label_free_strategy!r}")
        if (self.label_free_strategy == "end" and self.metric_for_best_model
                and self.metric_for_best_model.removeprefix("eval_") in self.label_free_validators):
            raise ValueError(f"metric_for_best_model={self.metric_for_best_model!r} chooses checkpoints by a "
                             "validator, which label_free_strategy='end' scores only after training: set "
                             "label_free_strategy='every_eval'")
        if self.train_sampling_strategy not in TRAIN_SAMPLING_STRATEGIES:
            raise ValueError(
                f"train_sampling_strategy={self.train_sampling_strategy!r}: hfadapt's batches hold source and target "
                f"rows in a fixed proportion (DomainBalancedSampler), which {TRAIN_SAMPLING_STRATEGIES} keep; "
                "'group_by_length' also groups rows of similar length within each domain"
            )
        if self.tapt_steps < 0 or self.tapt_learning_rate <= 0 or not 0.0 <= self.tapt_head_warmup < 1.0:
            raise ValueError(
                f"tapt_steps must be >= 0, tapt_learning_rate > 0 and tapt_head_warmup in [0, 1); got "
                f"{self.tapt_steps}, {self.tapt_learning_rate}, {self.tapt_head_warmup}"
            )
        if self.alignment_balancing not in ALIGNMENT_BALANCINGS:
            raise ValueError(
                f"alignment_balancing must be one of {ALIGNMENT_BALANCINGS}, got {self.alignment_balancing!r}"
            )
        if self.source_weighting not in SOURCE_WEIGHTINGS:
            raise ValueError(f"source_weighting must be one of {SOURCE_WEIGHTINGS}, got {self.source_weighting!r}")
        if (self.source_weighting == "fixed") != (self.source_domain_weights is not None):
            raise ValueError(
                "source_domain_weights are used with source_weighting='fixed' and only then; set both or neither"
            )
        if self.source_domain_weights is not None and (
            any(not math.isfinite(w) or w < 0 for w in self.source_domain_weights)
            or sum(self.source_domain_weights) <= 0
        ):
            raise ValueError(
                f"source_domain_weights must be finite numbers >= 0, not all 0; got {self.source_domain_weights}"
            )
        if self.source_weighting_samples < 2:
            raise ValueError(f"source_weighting_samples must be >= 2, got {self.source_weighting_samples}")
        if self.early_stopping_patience < 0 or self.early_stopping_min_steps < 0:
            raise ValueError("early_stopping_patience and early_stopping_min_steps must be >= 0, got "
                             f"{self.early_stopping_patience} and {self.early_stopping_min_steps}")
        if self.early_stopping_patience and not (self.load_best_model_at_end and self.metric_for_best_model):
            raise ValueError("early_stopping_patience needs load_best_model_at_end=True and a metric_for_best_model "
                             "(e.g. source_val_accuracy), with matching eval_strategy and save_strategy")
        for name in ("lora_r", "lora_alpha"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.feature_source not in FEATURE_SOURCES:
            raise ValueError(f"feature_source must be one of {FEATURE_SOURCES}, got {self.feature_source!r}")
        if not 0.0 < self.target_fraction < 1.0:
            raise ValueError(f"target_fraction must be strictly between 0 and 1, got {self.target_fraction}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.weight_ema_decay is not None:
            if not 0.0 < self.weight_ema_decay < 1.0:
                raise ValueError(f"weight_ema_decay must be in (0, 1) or None, got {self.weight_ema_decay}")
            if self.load_best_model_at_end:
                raise ValueError("weight_ema_decay and load_best_model_at_end exclude each other: the checkpoints "
                                 "hold the raw weights, and the EMA written at the end would replace the best one")
        if self.peft_save not in PEFT_SAVE_MODES:
            raise ValueError(f"peft_save must be one of {PEFT_SAVE_MODES}, got {self.peft_save!r}")

    def _build_method_settings(self) -> None:
        """Build every registered settings object from ``method_settings`` (their ``__post_init__`` validates
        them) and set ``method_settings`` to every setting's value.

        Raises:
            ValueError: if ``method_settings`` is no mapping (or JSON text of one) or names an unregistered setting.
        """
        values = self.method_settings
        if values is None or (isinstance(values, str) and not values.strip()):
            values = {}
        elif isinstance(values, str):
            values = json.loads(values)
        if not isinstance(values, Mapping):
            raise ValueError(f"method_settings must map setting names to values, got {values!r}")
        fields = setting_fields()
        unknown = sorted(set(values) - set(fields))
        if unknown:
            in_run = sorted(f.name for cls in settings_classes(self.method_names) for f in dataclasses.fields(cls))
            raise ValueError(f"unknown method setting(s) {unknown}; the settings of method {self.method!r} are "
                             f"{in_run} (any registered method's settings are accepted too: see --help)")
        objects = {cls: cls(**{f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values})
                   for cls in settings_classes()}
        self.__dict__["_settings_objects"] = objects
        self.__dict__["method_settings"] = {name: getattr(objects[cls], name) for name, (cls, _) in fields.items()}

    def settings_of(self, settings_class: type):
        """The settings object of ``settings_class`` (a registered settings dataclass, e.g. ``MMDSettings``) that
        this config built; a method's :meth:`~hfadapt.methods.base.AlignmentMethod.from_config` reads its own.

        Raises:
            ValueError: if ``settings_class`` is not registered.
        """
        objects = self.__dict__.get("_settings_objects", {})
        if settings_class not in objects:
            raise ValueError(f"{getattr(settings_class, '__name__', settings_class)} is no registered settings "
                             f"class; registered: {[cls.__name__ for cls in settings_classes()]}")
        return objects[settings_class]

    def __getattr__(self, name: str):
        """A method setting read as an attribute (``config.mmd_weight``): its value, or its registered default
        before ``__post_init__`` has run.

        Raises:
            AttributeError: for a name that is neither a field nor a registered setting.
        """
        if not name.startswith("__"):
            fields = setting_fields()
            if name in fields:
                cls, f = fields[name]
                objects = self.__dict__.get("_settings_objects")
                if objects is not None:
                    return getattr(objects[cls], name)
                return f.default_factory() if f.default is dataclasses.MISSING else f.default
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value) -> None:
        """Set a field; a method setting (``config.mmd_weight = 0.5``) goes to its settings object and to
        ``method_settings``, so both read the same value."""
        objects = self.__dict__.get("_settings_objects")
        fields = setting_fields() if objects is not None else {}
        if name in fields:
            setattr(objects[fields[name][0]], name, value)
            self.__dict__["method_settings"][name] = value
            return
        super().__setattr__(name, value)

    def to_dict(self) -> dict:
        """``TrainingArguments.to_dict`` with ``method_settings`` flattened into one entry per setting, so the
        dict reads as before the settings moved to their methods and ``AdaptConfig(**d)`` rebuilds the config."""
        values = super().to_dict()
        settings = values.pop("method_settings", None) or {}
        return {**values, **copy.deepcopy(settings)}

    @classmethod
    def settings_dataclasses(cls) -> tuple[type, ...]:
        """Every registered settings dataclass, whose fields parse as flags and recipe keys of this config
        (:func:`hfadapt.cli.args.parse_with_config` folds them into ``method_settings``)."""
        return settings_classes()

    @classmethod
    def flat_fields(cls) -> tuple[dataclasses.Field, ...]:
        """The fields of this config as they read flat: its dataclass fields except ``method_settings``, then
        every registered setting's field (each with its default and ``help``)."""
        own = tuple(f for f in dataclasses.fields(cls) if f.name != "method_settings")
        return own + tuple(f for _, f in setting_fields().values())

    @property
    def method_names(self) -> list[str]:
        """The registered alignment methods named by ``method`` (``[]`` for the source-only baseline)."""
        return parse_method_names(self.method)

    @property
    def two_stage(self) -> bool:
        """Whether this run's method starts from the trained source-only baseline (``adapt_from_source_only`` with
        a method; the baseline itself starts from the pretrained model)."""
        return self.adapt_from_source_only and bool(self.method_names)

    def adaptation_settings(self, method: str | None = None) -> dict:
        """The adaptation settings a run of ``method`` (default: ``self.method``) depends on: every field that
        ``TrainingArguments`` lacks, except ``method`` itself, ``alignment_balancing`` when no method it
        reweights is in the run and ``adapt_from_source_only`` for the baseline, then the settings the run reads
        (:func:`~hfadapt.methods.registry.settings_classes`:
        the shared ones, each method's own and those of the methods it reads), never another method's.
        Used for model cards and to tell which benchmark rows a recipe change voids."""
        names = parse_method_names(self.method if method is None else method)
        # resume_weights_only and overwrite_output_dir say how a run continues or starts, not what it trains
        # mixed_precision says how it computes, as TrainingArguments' bf16 does; label_free_strategy when it scores
        # tapt_cache_dir says where TAPT's result is kept, not what it is
        base = {f.name for f in dataclasses.fields(TrainingArguments)} | {"method", "method_settings",
                                                                        "resume_weights_only", "overwrite_output_dir",
                                                                        "mixed_precision", "label_free_strategy",
                                                                        "tapt_cache_dir"}
        if not any(ALIGNMENT_METHODS[name].feature_scale_dependent or ALIGNMENT_METHODS[name].adversarial
                   for name in names):
            base.add("alignment_balancing")  # it reweights the feature-scale-dependent and adversarial methods only
        if not names:
            base.add("adapt_from_source_only")  # the baseline is what a two-stage method starts from
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in base}
        read = {f.name: getattr(self.settings_of(cls), f.name)
                for cls in settings_classes(names) for f in dataclasses.fields(cls)}
        return {**shared, **read}

    def method_weight(self, name: str) -> float:
        """The loss weight ``<name>_weight`` of a method (1.0 for a method with no such field)."""
        return float(getattr(self, f"{name}_weight", 1.0))

    def source_per_batch(self, batch_size: int) -> int:
        """Source rows in a batch of ``batch_size`` rows; raises ``ValueError`` if either domain gets none."""
        n_target = round(batch_size * self.target_fraction)
        n_source = batch_size - n_target
        if n_source < 1 or n_target < 1:
            raise ValueError(
                f"a training batch of {batch_size} rows with target_fraction={self.target_fraction} leaves "
                f"{n_source} source and {n_target} target rows; raise per_device_train_batch_size"
            )
        return n_source


def _route_method_settings(init):
    """Wrap the dataclass ``__init__`` so that keyword arguments named after registered method settings
    (``mmd_weight=0.5``) go into ``method_settings`` (over its own entries); ``dataclasses.replace`` passes
    through here too."""

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        names = [name for name in kwargs if name in setting_fields()]
        if names:
            given = kwargs.get("method_settings")
            if isinstance(given, str):
                given = json.loads(given) if given.strip() else {}
            kwargs["method_settings"] = {**(given or {}), **{name: kwargs.pop(name) for name in names}}
        init(self, *args, **kwargs)

    return __init__


AdaptConfig.__init__ = _route_method_settings(AdaptConfig.__init__)
