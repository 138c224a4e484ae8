"""AdaMatch: FixMatch for domain adaptation, with a threshold relative to the source confidence and distribution
alignment of the target predictions.

Berthelot, Roelofs, Sohn, Carlini & Kurakin, "AdaMatch: A Unified Approach to Semi-Supervised Learning and Domain
Adaptation", ICLR 2022. With weak-view probabilities ``p_S`` of the ``N_S`` source rows and ``p_T`` of the ``M``
target rows of a batch:

- relative confidence threshold: ``c = tau * mean_i max_c p_S,ic`` (``tau = adamatch_tau``, the paper's 0.9);
- distribution alignment: ``p~_T = normalise(p_T * mean_i p_S,i / mean_i p_T,i)`` (class-wise, then each row
  renormalised to sum 1), which moves the target predictions' class marginal to the source's;
- pseudo-label ``argmax p~_T``, kept where ``max p~_T >= c``; loss as FixMatch's,
  ``L = (1 / M) sum_i mask_i * CE(z_i^strong, pseudo_i)``.

Distribution alignment assumes the target domain's classes are as frequent as the source's: where they are not, it
pulls pseudo-labels towards the wrong class marginal. ``adamatch_distribution_alignment=False`` takes the
pseudo-labels and confidences from ``p_T`` itself (FixMatch's pseudo-labels with AdaMatch's relative threshold).

Differences from the paper: *random logit interpolation* (mixing the logits of a source-only forward with those of
the joint source+target forward, to keep batch-normalisation statistics apart) is skipped: transformer backbones
have no batch normalisation. On such a backbone the target rows' weak view runs in a forward of its own without
gradient, since no loss back-propagates through it (``AdaptModel.target_rows_apart``); with batch normalisation the
main forward runs source and target rows together, as the paper's joint pass does, and :meth:`AdaMatchLoss.bind`
logs a warning: without the interpolation, the digits example's small ResNet collapsed onto a few classes on USPS ->
optdigits (benchmarks/README.md, "Digits across scanners").

The target loss weight follows the run's ``weight_schedule``: the paper's warm-up,
``mu(p) = 1/2 - cos(min(pi, 2 pi p)) / 2``, is ``weight_schedule="cosine_ramp"``; the default, ``warm_start``, rises
faster (0.39 of the weight at 1/12 of training, against the paper's 0.067). Logged: ``adamatch_mask_rate`` and
``adamatch_threshold`` (``c``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from torch import nn

from ..modeling.heads import has_batch_norm
from .base import AlignmentOutput
from .consistency import DEFAULT_AUGMENTATION, ConsistencyMethod, check_augmentation
from .fixmatch import confidence_masked_cross_entropy
from .registry import register_method
from .settings import check_fraction, check_weights

logger = logging.getLogger(__name__)

BATCH_NORM_WARNING = (
    "adamatch on a model with batch normalisation: hfadapt does not implement AdaMatch's random logit "
    "interpolation, so the target rows shape the batch statistics and the pseudo-labels can collapse onto a few "
    "classes; prefer a model without batch normalisation (ViT, BERT) or another method (e.g. --method dann)"
)


def distribution_alignment(target_probs: torch.Tensor, source_probs: torch.Tensor) -> torch.Tensor:
    """``normalise(p_T * mean(p_S) / mean(p_T))``: ``(M, C)`` target and ``(N_S, C)`` source probabilities ->
    ``(M, C)`` rows that sum to 1."""
    aligned = target_probs * (source_probs.mean(0) / target_probs.mean(0).clamp_min(1e-12))
    return aligned / aligned.sum(-1, keepdim=True).clamp_min(1e-12)


def adamatch_pseudo_labels(source_logits: torch.Tensor, target_logits: torch.Tensor, tau: float = 0.9,
                           align: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """AdaMatch's pseudo-labels of the target rows (no gradient).

    Args:
        source_logits: ``(N_S, C)`` weak-view logits of the source rows, ``N_S >= 1``.
        target_logits: ``(M, C)`` weak-view logits of the target rows.
        tau: relative threshold in ``(0, 1]``.
        align: take labels and confidences from the distribution-aligned target probabilities (the paper's);
            ``False``: from the target probabilities as they are.

    Returns:
        ``(pseudo_labels (M,) long, mask (M,) bool, threshold (scalar))``.

    Raises:
        ValueError: if there are no source rows or the class counts differ.
    """
    if len(source_logits) == 0 or source_logits.shape[-1] != target_logits.shape[-1]:
        raise ValueError(f"AdaMatch needs source rows with as many classes as the target's, got "
                         f"{tuple(source_logits.shape)} and {tuple(target_logits.shape)}")
    source_probs = torch.softmax(source_logits.detach().float(), dim=-1)
    target_probs = torch.softmax(target_logits.detach().float(), dim=-1)
    threshold = tau * source_probs.max(-1).values.mean()
    if align:
        target_probs = distribution_alignment(target_probs, source_probs)
    confidence, pseudo_labels = target_probs.max(-1)
    return pseudo_labels, confidence >= threshold, threshold


@dataclass
class AdaMatchSettings:
    """AdaMatch's settings (Berthelot et al., ICLR 2022).

    Raises:
        ValueError: from ``__post_init__`` on a negative weight, ``adamatch_tau`` outside ``(0, 1]`` or an
            augmentation spec that does not parse.
    """

    adamatch_weight: float = field(
        default=1.0,
        metadata={"help": "Weight of AdaMatch's pseudo-label loss on the target rows (Berthelot et al., ICLR 2022; "
                          "its warm-up is weight_schedule, the paper's is 'cosine_ramp')."},
    )
    adamatch_tau: float = field(
        default=0.9,
        metadata={"help": "AdaMatch's relative threshold, in (0, 1]: pseudo-labels are kept where the aligned "
                          "target probability is >= tau times the batch's mean source confidence (the paper's 0.9)."},
    )
    adamatch_augmentation: str = field(
        default=DEFAULT_AUGMENTATION, metadata={"help": "AdaMatch's strong view (as fixmatch_augmentation)."}
    )
    adamatch_distribution_alignment: bool = field(
        default=True,
        metadata={"help": "Align the target predictions' class marginal to the batch's source predictions before "
                          "taking pseudo-labels (the paper's). It assumes the target's classes are as frequent as "
                          "the source's; turn it off where they are known not to be."},
    )

    def __post_init__(self):
        check_weights(self, "adamatch_weight")
        check_fraction(self, "adamatch_tau", low_open=True, high_open=False)
        check_augmentation(self, "adamatch_augmentation")


@register_method
class AdaMatchLoss(ConsistencyMethod):
    """AdaMatch on the target rows (module docstring). Shape: logits ``(N, C)`` of source and target rows; output a
    scalar loss and ``metrics = {"mask_rate", "threshold"}``.

    Args:
        num_domains: source domains + 1 (every source domain's rows count as source).
        augmentation: the strong view's spec (:mod:`hfadapt.augmentation`).
        tau: relative confidence threshold in ``(0, 1]``.
        distribution_alignment: align the target probabilities before taking pseudo-labels (the paper's).

    Raises:
        ValueError: on ``tau`` outside ``(0, 1]`` or a bad spec; in :meth:`bind`, see
            :class:`~hfadapt.methods.consistency.ConsistencyMethod`.
    """

    name = "adamatch"
    needs_target_gradient = False  # the main forward's target rows are the weak view, detached
    settings_class = AdaMatchSettings

    def __init__(self, num_domains: int = 2, augmentation: str = DEFAULT_AUGMENTATION, tau: float = 0.9,
                 distribution_alignment: bool = True):
        super().__init__(num_domains, augmentation)
        AdaMatchSettings(adamatch_tau=tau)  # raises ValueError naming the setting out of range
        self.tau = float(tau)
        self.distribution_alignment = bool(distribution_alignment)

    @classmethod
    def from_config(cls, config, feature_dim: int, num_domains: int, num_classes: int) -> AdaMatchLoss:
        settings = config.settings_of(AdaMatchSettings)
        return cls(num_domains, settings.adamatch_augmentation, settings.adamatch_tau,
                   settings.adamatch_distribution_alignment)

    def bind(self, task_model: nn.Module, processing_class=None) -> None:
        """As :meth:`ConsistencyMethod.bind`; also logs :data:`BATCH_NORM_WARNING` if ``task_model`` has batch
        normalisation (the paper's random logit interpolation, which keeps its statistics apart, is not here)."""
        super().bind(task_model, processing_class)
        if has_batch_norm(task_model):
            logger.warning(BATCH_NORM_WARNING)

    def forward(self, features: torch.Tensor, domain: torch.Tensor, logits: torch.Tensor | None = None,
                target_inputs: dict | None = None) -> AlignmentOutput:
        """AdaMatch's loss on the target rows; the source rows' logits set the threshold and the alignment.

        Args:
            features: ``(N, F)``, unused.
            domain: ``(N,)`` domain ids; rows below ``num_domains - 1`` are source rows.
            logits: ``(N, C)`` of the main forward (detached here: weak views of both domains).
            target_inputs: the target rows' model inputs, from :meth:`prepare_inputs`.

        Raises:
            ValueError: if the logits or ``target_inputs`` are missing, or the batch has no source rows.
        """
        weak = self.weak_logits(domain, logits)
        source = logits[domain != self.target_domain]
        pseudo_labels, mask, threshold = adamatch_pseudo_labels(source, weak, self.tau, self.distribution_alignment)
        strong = self.student_logits(self.augment(self.require_target_inputs(target_inputs)))
        loss = confidence_masked_cross_entropy(strong, pseudo_labels, mask)
        return AlignmentOutput(loss, {"mask_rate": mask.float().mean(), "threshold": threshold})
