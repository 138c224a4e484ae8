"""`AdaptConfig`: `TrainingArguments` plus what domain adaptation needs."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from .augmentation import split_augmentation
from .balancing import ALIGNMENT_BALANCINGS
from .features import FEATURE_SOURCES
from .grl import GRL_SCHEDULES
from .methods import ALIGNMENT_METHODS, parse_method_names
from .methods.consistency import DEFAULT_AUGMENTATION
from .methods.mmd import MMD_ESTIMATORS
from .validators import VALIDATORS

PEFT_SAVE_MODES = ("merged", "adapter")
SOURCE_WEIGHTINGS = ("uniform", "fixed", "auto")
TRAIN_SAMPLING_STRATEGIES = ("random", "group_by_length")
"""``TrainingArguments.train_sampling_strategy`` values that keep the source/target proportion of every batch."""


def launched_on_cpus_only() -> bool:
    """Whether this process is one of several (``WORLD_SIZE > 1``) on a machine with no CUDA or other accelerator."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    accelerator = getattr(torch, "accelerator", None)
    has_accelerator = accelerator.is_available() if accelerator is not None else torch.cuda.is_available()
    return not has_accelerator


@dataclass
class AdaptConfig(TrainingArguments):
    """Configuration of :class:`~hfadapt.AdaptTrainer`: every `TrainingArguments` field plus the alignment
    method, its loss weights and hyperparameters, batch composition and PEFT.

    Every field carries ``metadata={"help": ...}`` so ``HfArgumentParser`` prints a real ``--help``.

    Raises:
        ValueError: from ``__post_init__`` when a value is out of range, naming the field.

    >>> cfg = AdaptConfig(output_dir="out", method="dann+mmd", mmd_weight=0.5)
    >>> cfg.method_names
    ['dann', 'mmd']

    The method defaults are the recommended recipe, the one the benchmark supports
    (``hfadapt/recipes/sentiment_transfer.yaml``, reasons in ``docs/recipes.md``): ``alignment_balancing="gradient"``,
    ``grl_max_lambda=0.1``, ``mmd_weight = jan_weight = coral_weight = 0.1``, ``iw_flattening=0.5``,
    ``udalm_weight=0.01``. An encoder trained from scratch wants Ganin et al.'s settings instead
    (``hfadapt/recipes/digits_transfer.yaml``).

    Defaults that differ from `TrainingArguments`: ``label_names=["labels"]`` (the Trainer otherwise guesses
    from the forward signature), ``logging_steps=10``, ``save_strategy="no"``.
    """

    # --- method -------------------------------------------------------------------------------------------
    method: str = field(
        default="dann",
        metadata={
            "help": "Alignment method(s): 'none' (source-only baseline), 'dann', 'cdan', 'mmd', 'jan', 'coral', "
            "'mcc', 'entropy', 'im', 'iw' (importance weighting), 'udalm' (target masked LM), 'self_training' (class-"
            "balanced pseudo-labels), 'fixmatch', 'adamatch', 'mean_teacher' (consistency self-training on augmented "
            "target rows), or several joined by '+' (e.g. 'dann+mmd', 'dann+fixmatch')."
        },
    )
    dann_weight: float = field(default=1.0, metadata={"help": "Weight of the DANN domain-discriminator loss."})
    cdan_weight: float = field(default=1.0, metadata={"help": "Weight of the CDAN conditional discriminator loss."})
    mmd_weight: float = field(
        default=0.1,
        metadata={"help": "Weight of the MK-MMD loss (with alignment_balancing='gradient': its share of the task's "
                  "feature gradient)."},
    )
    jan_weight: float = field(
        default=0.1,
        metadata={"help": "Weight of the JAN joint MMD loss (uses the MMD kernel settings; read as mmd_weight)."},
    )
    coral_weight: float = field(default=0.1, metadata={"help": "Weight of the Deep CORAL loss (read as mmd_weight)."})
    mcc_weight: float = field(default=1.0, metadata={"help": "Weight of the minimum class confusion loss."})
    entropy_weight: float = field(default=0.1, metadata={"help": "Weight of target entropy minimisation."})
    im_weight: float = field(default=0.1, metadata={"help": "Weight of target information maximisation."})
    iw_weight: float = field(
        default=1.0,
        metadata={"help": "Weight of the importance-weighting domain classifier's loss "
                  "(it trains only that classifier)."},
    )
    udalm_weight: float = field(
        default=0.01,
        metadata={
            "help": "Weight of UDALM's masked-language-model loss on the target text. With a fresh MLM head (no "
            "pretrained head in the checkpoint), its encoder gradient is about 10x the task's even after the head "
            "warm-up (measured on MiniLM), so 0.1 brings them level and 0.01 gives it a tenth of the task's pull."
        },
    )
    udalm_head_warmup: float = field(
        default=0.1,
        metadata={
            "help": "Fraction of training during which UDALM's MLM head learns on detached hidden states (linear "
            "probing first, as LP-FT, Kumar et al., ICLR 2022): a random head's gradient (90x the task's at step 0) "
            "does not reach the encoder."
        },
    )
    udalm_mask_probability: float = field(
        default=0.15, metadata={"help": "Share of target tokens UDALM masks (BERT's 0.15)."}
    )
    udalm_train_output_embedding: bool = field(
        default=True,
        metadata={
            "help": "Whether UDALM's MLM loss trains the decoder's tied output matrix (the input word embeddings). "
            "Its softmax over the vocabulary sends a gradient to every word's row each step, and AdamW scales each "
            "row's step to the learning rate however small that gradient is (the loss weight does not shrink it); "
            "False detaches the matrix, so only the rows of words in the batch move, as with the other methods."
        },
    )
    iw_clip: float = field(
        default=10.0, metadata={"help": "Importance weights p_t(x)/p_s(x) are clipped to [1/iw_clip, iw_clip] (>= 1)."}
    )
    iw_flattening: float = field(
        default=0.5,
        metadata={"help": "Exponent lambda in [0, 1] of the clipped importance weights (Shimodaira 2000's flattening: "
                          "0 = unweighted, 1 = the full density ratio)."},
    )

    # --- self-training ------------------------------------------------------------------------------------
    self_training_weight: float = field(
        default=1.0, metadata={"help": "Weight of the pseudo-label loss on the target rows (self_training)."}
    )
    self_training_threshold: float = field(
        default=0.0,
        metadata={"help": "Confidence floor in [0, 1) a target row's prediction needs to count as a pseudo-label, "
                  "on top of the class-balanced selection."},
    )
    self_training_class_fraction: float = field(
        default=0.5,
        metadata={"help": "Share of each predicted class's target rows kept as pseudo-labels, the most confident "
                  "first (class-balanced self-training, Zou et al., ECCV 2018)."},
    )
    self_training_warmup: float = field(
        default=0.1,
        metadata={"help": "Fraction of training before pseudo-labels count; their weight then ramps up linearly "
                  "over the same span (Lee 2013)."},
    )
    self_training_queue_size: int = field(
        default=512, metadata={"help": "Recent target confidences per class that the class-balanced ranking uses."}
    )

    # --- consistency self-training (FixMatch, AdaMatch, mean teacher) ----------------------------------------
    fixmatch_weight: float = field(
        default=1.0,
        metadata={"help": "Weight of FixMatch's pseudo-label loss on the strong view of the target rows (1 in Sohn et "
                          "al., NeurIPS 2020)."},
    )
    fixmatch_threshold: float = field(
        default=0.95,
        metadata={"help": "FixMatch keeps a target row's pseudo-label where the weak view's largest probability is "
                          ">= this, in [0, 1] (the paper's 0.95)."},
    )
    fixmatch_augmentation: str = field(
        default=DEFAULT_AUGMENTATION,
        metadata={"help": "FixMatch's strong view: '+'-joined augmentations (hfadapt.augmentation); token models use "
                          "the text ones (mask:p, delete:p, cutoff:r, dropout), image models the image ones "
                          "(trivial, randaugment:n, cutout:s, dropout)."},
    )
    adamatch_weight: float = field(
        default=1.0,
        metadata={"help": "Weight of AdaMatch's pseudo-label loss on the target rows (Berthelot et al., ICLR 2022; "
                          "its warm-up is weight_schedule)."},
    )
    adamatch_tau: float = field(
        default=0.9,
        metadata={"help": "AdaMatch's relative threshold, in (0, 1]: pseudo-labels are kept where the aligned "
                          "target probability is >= tau times the batch's mean source confidence (the paper's 0.9)."},
    )
    adamatch_augmentation: str = field(
        default=DEFAULT_AUGMENTATION, metadata={"help": "AdaMatch's strong view (as fixmatch_augmentation)."}
    )
    mean_teacher_weight: float = field(
        default=1.0,
        metadata={"help": "Weight of the mean-teacher consistency loss (squared difference of the student's and the "
                          "EMA teacher's target probabilities; French et al., ICLR 2018)."},
    )
    mean_teacher_ema_decay: float = field(
        default=0.99,
        metadata={"help": "Decay d in [0, 1) of the teacher's exponential moving average of the student's weights, "
                          "one update per optimizer step (French et al.'s 0.99)."},
    )
    mean_teacher_threshold: float = field(
        default=0.9,
        metadata={"help": "Target rows count where the teacher's largest probability is > this, in [0, 1). French "
                          "et al. use 0.968 on 10-class tasks; 0.9 lets the term act sooner on 2-3 class tasks "
                          "whose fresh classification head starts near uniform (a choice, not tuned)."},
    )
    mean_teacher_augmentation: str = field(
        default=DEFAULT_AUGMENTATION,
        metadata={"help": "Augmentation of both the teacher's and the student's view, drawn independently for each "
                          "(as fixmatch_augmentation)."},
    )

    # --- gradient reversal (DANN) -------------------------------------------------------------------------
    grl_schedule: str = field(
        default="warm_start",
        metadata={
            "help": "Gradient-reversal coefficient schedule: 'warm_start' (Ganin et al. 2016: "
            "lambda_p = max * (2 / (1 + exp(-gamma * p)) - 1), p = optimizer steps done / total) or 'constant'."
        },
    )
    grl_max_lambda: float = field(
        default=0.1,
        metadata={"help": "Largest gradient-reversal coefficient (Ganin et al. use 1.0 for an encoder trained from "
                  "scratch; 0.1 keeps the adversary gentle when fine-tuning a pretrained one)."},
    )
    grl_gamma: float = field(
        default=10.0,
        metadata={"help": "Steepness gamma of the warm-start schedules (gradient reversal and loss weights)."},
    )
    weight_schedule: str = field(
        default="warm_start",
        metadata={
            "help": "Schedule of the loss weights of the non-adversarial methods (MMD, JAN, CORAL, MCC, entropy, IM, "
            "...): 'warm_start' ramps each weight from 0 to its <name>_weight as 2 / (1 + exp(-gamma * p)) - 1, the "
            "progressive strategy of JAN (Long et al., ICML 2017) after Ganin et al.; 'constant' applies it from the "
            "first step. Adversarial methods (DANN, CDAN) ramp their gradient-reversal coefficient instead."
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
            "help": "Validators scored at every evaluation without target labels (hfadapt.validators: entropy, im, "
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

    # --- domain discriminator (DANN) ----------------------------------------------------------------------
    discriminator_hidden_size: int = field(
        default=256, metadata={"help": "Width of the discriminator's hidden layers."}
    )
    discriminator_num_layers: int = field(default=2, metadata={"help": "Number of hidden layers of the discriminator."})
    discriminator_dropout: float = field(default=0.1, metadata={"help": "Dropout between discriminator layers."})
    discriminator_lr_multiplier: float = field(
        default=10.0,
        metadata={"help": "The discriminator's learning rate is learning_rate times this "
                  "(a fresh head learns faster)."},
    )

    # --- CDAN, MCC ----------------------------------------------------------------------------------------
    cdan_entropy_conditioning: bool = field(
        default=False, metadata={"help": "CDAN+E: weight discriminator rows by 1 + exp(-entropy of the prediction)."}
    )
    mcc_temperature: float = field(default=2.5, metadata={"help": "Temperature T of MCC's softmax (2.5 in the paper)."})

    # --- MMD ----------------------------------------------------------------------------------------------
    mmd_kernel_multipliers: list[float] = field(
        default_factory=lambda: [0.25, 0.5, 1.0, 2.0, 4.0],
        metadata={
            "help": "Gaussian kernel bandwidths of MK-MMD (DAN, Long et al. 2015) as multiples of the batch's mean "
            "pairwise squared distance: sigma_u^2 = m_u * mean ||x - y||^2."
        },
    )

    mmd_estimator: str = field(
        default="unbiased",
        metadata={
            "help": "MMD^2 estimator: 'unbiased' (U-statistic, Gretton et al. 2012), 'biased' (V-statistic, whose "
            "self-similarity terms pull each domain's features together on small batches) or 'linear' (Gretton et "
            "al.'s linear-time statistic over disjoint pairs: O(B) instead of O(B^2), higher variance; MK-MMD only)."
        },
    )

    # --- features and batches -----------------------------------------------------------------------------
    source_only_full_batch: bool = field(
        default=True,
        metadata={
            "help": "The source-only baseline ('none') runs the same forward over source and target rows as the "
            "methods (target rows get no loss), so it draws the same dropout masks and a method differs from it only "
            "by its loss: the comparison is paired. On MiniLM a different dropout stream alone moved target "
            "accuracy by 2 points. False skips the target rows (half the cost of the baseline). Models with batch "
            "normalisation always skip them: target rows in the batch statistics would adapt the baseline (AdaBN)."
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

    def __post_init__(self):
        if not self.use_cpu and launched_on_cpus_only():
            # `accelerate launch --multi_gpu --num_processes N` on a machine without an accelerator: without
            # use_cpu, TrainingArguments sets up no process group and each process trains alone (accelerate 1.15).
            self.use_cpu = True
        super().__post_init__()
        if not isinstance(self.method, str):  # a YAML list: [dann, mmd]
            self.method = "+".join(str(m) for m in self.method)
        parse_method_names(self.method)  # raises on an unknown or repeated name
        weights = [f"{name}_weight" for name in ALIGNMENT_METHODS if hasattr(self, f"{name}_weight")]
        for name in (*weights, "grl_max_lambda"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.grl_schedule not in GRL_SCHEDULES:
            raise ValueError(f"grl_schedule must be one of {sorted(GRL_SCHEDULES)}, got {self.grl_schedule!r}")
        if self.weight_schedule not in GRL_SCHEDULES:
            raise ValueError(f"weight_schedule must be one of {sorted(GRL_SCHEDULES)}, got {self.weight_schedule!r}")
        unknown = [v for v in self.label_free_validators if v not in VALIDATORS]
        if unknown:
            raise ValueError(f"label_free_validators {unknown} are not registered; choose from {sorted(VALIDATORS)}")
        if self.label_free_max_rows < 2:
            raise ValueError(f"label_free_max_rows must be >= 2, got {self.label_free_max_rows}")
        if self.train_sampling_strategy not in TRAIN_SAMPLING_STRATEGIES:
            raise ValueError(
                f"train_sampling_strategy={self.train_sampling_strategy!r}: hfadapt's batches hold source and target "
                f"rows in a fixed proportion (DomainBalancedSampler), which {TRAIN_SAMPLING_STRATEGIES} keep; "
                "'group_by_length' also groups rows of similar length within each domain"
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
        if not 0.0 <= self.udalm_head_warmup <= 1.0:
            raise ValueError(f"udalm_head_warmup must be in [0, 1], got {self.udalm_head_warmup}")
        if not 0.0 < self.udalm_mask_probability < 1.0:
            raise ValueError(f"udalm_mask_probability must be in (0, 1), got {self.udalm_mask_probability}")
        if self.early_stopping_patience < 0 or self.early_stopping_min_steps < 0:
            raise ValueError("early_stopping_patience and early_stopping_min_steps must be >= 0, got "
                             f"{self.early_stopping_patience} and {self.early_stopping_min_steps}")
        if self.early_stopping_patience and not (self.load_best_model_at_end and self.metric_for_best_model):
            raise ValueError("early_stopping_patience needs load_best_model_at_end=True and a metric_for_best_model "
                             "(e.g. source_val_accuracy), with matching eval_strategy and save_strategy")
        if not self.iw_clip >= 1:
            raise ValueError(f"iw_clip must be >= 1, got {self.iw_clip}")
        if not 0.0 <= self.iw_flattening <= 1.0:
            raise ValueError(f"iw_flattening must be in [0, 1], got {self.iw_flattening}")
        self._check_consistency_fields()
        for name in ("grl_gamma", "discriminator_lr_multiplier", "mcc_temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("discriminator_hidden_size", "discriminator_num_layers", "lora_r", "lora_alpha"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.mmd_kernel_multipliers or any(not m > 0 for m in self.mmd_kernel_multipliers):
            raise ValueError(
                "mmd_kernel_multipliers must be a non-empty list of positive numbers, "
                f"got {self.mmd_kernel_multipliers}"
            )
        if self.mmd_estimator not in MMD_ESTIMATORS:
            raise ValueError(f"mmd_estimator must be one of {MMD_ESTIMATORS}, got {self.mmd_estimator!r}")
        if self.feature_source not in FEATURE_SOURCES:
            raise ValueError(f"feature_source must be one of {FEATURE_SOURCES}, got {self.feature_source!r}")
        if not 0.0 < self.target_fraction < 1.0:
            raise ValueError(f"target_fraction must be strictly between 0 and 1, got {self.target_fraction}")
        for name in ("lora_dropout", "discriminator_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.weight_ema_decay is not None:
            if not 0.0 < self.weight_ema_decay < 1.0:
                raise ValueError(f"weight_ema_decay must be in (0, 1) or None, got {self.weight_ema_decay}")
            if self.load_best_model_at_end:
                raise ValueError("weight_ema_decay and load_best_model_at_end exclude each other: the checkpoints "
                                 "hold the raw weights, and the EMA written at the end would replace the best one")
        if self.peft_save not in PEFT_SAVE_MODES:
            raise ValueError(f"peft_save must be one of {PEFT_SAVE_MODES}, got {self.peft_save!r}")

    def _check_consistency_fields(self) -> None:
        """Ranges of the FixMatch, AdaMatch and mean-teacher fields; their augmentation specs must parse."""
        if not 0.0 <= self.fixmatch_threshold <= 1.0:
            raise ValueError(f"fixmatch_threshold must be in [0, 1], got {self.fixmatch_threshold}")
        if not 0.0 < self.adamatch_tau <= 1.0:
            raise ValueError(f"adamatch_tau must be in (0, 1], got {self.adamatch_tau}")
        for name in ("mean_teacher_ema_decay", "mean_teacher_threshold"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        for name in ("fixmatch_augmentation", "adamatch_augmentation", "mean_teacher_augmentation"):
            try:
                split_augmentation(getattr(self, name))
            except ValueError as err:
                raise ValueError(f"{name}={getattr(self, name)!r}: {err}") from None

    @property
    def method_names(self) -> list[str]:
        """The registered alignment methods named by ``method`` (``[]`` for the source-only baseline)."""
        return parse_method_names(self.method)

    def adaptation_settings(self, method: str | None = None) -> dict:
        """The adaptation fields a run of ``method`` (default: ``self.method``) depends on: every field that
        ``TrainingArguments`` lacks, except ``method`` itself, the fields of other methods (``<other>_*``) and
        ``alignment_balancing`` when no method it reweights is in the run.
        Used for model cards and to tell which benchmark rows a recipe change voids."""
        names = parse_method_names(self.method if method is None else method)
        own = {prefix for name in names for prefix in (name, *ALIGNMENT_METHODS[name].config_prefixes)}
        others = tuple(f"{name}_" for name in ALIGNMENT_METHODS if name not in own)
        # resume_weights_only and overwrite_output_dir say how a run continues or starts, not what it trains
        base = {f.name for f in dataclasses.fields(TrainingArguments)} | {"method", "resume_weights_only",
                                                                        "overwrite_output_dir"}
        if not any(ALIGNMENT_METHODS[name].feature_scale_dependent or ALIGNMENT_METHODS[name].adversarial
                   for name in names):
            base.add("alignment_balancing")  # it reweights MMD, JAN, CORAL and the GRL of DANN and CDAN only
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in base and not f.name.startswith(others)}

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
