"""Self-training on the target rows: the model's own confident, class-balanced predictions as labels.

- Pseudo-labels with a warm-up: Lee, "Pseudo-Label: The Simple and Efficient Semi-Supervised Learning Method for
  Deep Neural Networks", ICML 2013 Workshop on Challenges in Representation Learning. The unlabelled rows' loss
  counts only once the classifier has learned something (here: after ``self_training_warmup`` of training),
  then ramps up linearly over the same span.
- Class-balanced selection: Zou et al., "Unsupervised Domain Adaptation for Semantic Segmentation via
  Class-Balanced Self-Training" (CBST), ECCV 2018. Each predicted class keeps its own most confident share
  ``self_training_class_fraction`` of rows, so that a class the source model favours on the target domain does not
  take over the pseudo-labels (the usual failure of plain thresholding under shift). CBST ranks a whole round's
  predictions; online, the ranking is against a queue of the last ``self_training_queue_size`` target
  confidences of each predicted class.

Loss over the ``N_t`` target rows of a batch, ``p_i = softmax(z_i)``, ``y_i = argmax p_i`` (no gradient through
``y_i`` or the selection): ``L = 1 / N_t * sum_i m_i CE(z_i, y_i)``, with ``m_i = 1`` iff ``max p_i >=
self_training_threshold`` and ``max p_i`` is at least the ``1 - class_fraction`` quantile of class ``y_i``'s queue.
The denominator is every target row (as FixMatch's), so the loss grows with the share of rows selected.

CBST keeps each *predicted* class's share, so a model that predicts one class too often on the target domain
keeps doing so in its pseudo-labels, and can drift further. With ``self_training_distribution_alignment`` the
probabilities are first aligned to the batch's source predictions, ``p~_i = normalise(p_i * mean_S p / mean_T p)``
(distribution alignment: Berthelot et al., ReMixMatch, ICLR 2020; in the batch form of AdaMatch, ICLR 2022), and
``y_i``, the confidence and the ranking read ``p~_i``; the loss is still the cross-entropy of the unaligned logits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..utils.distributed import gather_rows
from .adamatch import distribution_alignment
from .base import AlignmentMethod, AlignmentOutput
from .registry import register_method
from .settings import check_fraction, check_weights


def warmup_ramp(progress: float, warmup: float) -> float:
    """Lee (2013)'s ``alpha(t)`` as a factor in ``[0, 1]``: 0 until ``progress`` reaches ``warmup``, then linear up
    to 1 at ``2 * warmup`` (``warmup = 0``: always 1). ``progress`` is the fraction of training done."""
    if warmup <= 0:
        return 1.0
    return min(max((progress - warmup) / warmup, 0.0), 1.0)


def class_thresholds(queue: torch.Tensor, filled: torch.Tensor, fraction: float) -> torch.Tensor:
    """Per-class confidence thresholds: the ``1 - fraction`` quantile of each class's queued confidences.

    Args:
        queue: ``(C, Q)`` max-probabilities of recent target rows predicted as each class.
        filled: ``(C,)`` long, how many of each row of ``queue`` hold values (the first ``filled[c]`` slots).
        fraction: the share of each class to keep, in ``(0, 1]``.

    Returns:
        ``(C,)`` thresholds; 0 for a class with an empty queue (nothing to rank against yet: keep its rows).
    """
    out = torch.zeros(queue.shape[0], dtype=queue.dtype, device=queue.device)
    for c in range(queue.shape[0]):
        n = int(filled[c])
        if n:
            out[c] = torch.quantile(queue[c, :n], 1.0 - fraction)
    return out


@dataclass
class SelfTrainingSettings:
    """Self-training's settings (Lee, ICML 2013 workshop; class-balanced selection: Zou et al., ECCV 2018).

    Raises:
        ValueError: from ``__post_init__`` on a negative weight, ``self_training_threshold`` outside ``[0, 1)``,
            ``self_training_class_fraction`` outside ``(0, 1]``, ``self_training_warmup`` outside ``[0, 0.5]`` or
            ``self_training_queue_size < 1``.
    """

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
    self_training_distribution_alignment: bool = field(
        default=False,
        metadata={"help": "Align the target probabilities' class marginal to the batch's source predictions before "
                  "taking pseudo-labels (ReMixMatch/AdaMatch's distribution alignment), so that a class the model "
                  "over-predicts on the target does not keep its excess share."},
    )

    def __post_init__(self):
        check_weights(self, "self_training_weight")
        check_fraction(self, "self_training_threshold")
        check_fraction(self, "self_training_class_fraction", low_open=True, high_open=False)
        if not 0.0 <= self.self_training_warmup <= 0.5:
            raise ValueError(f"self_training_warmup must be in [0, 0.5], got {self.self_training_warmup}")
        if self.self_training_queue_size < 1:
            raise ValueError(f"self_training_queue_size must be >= 1, got {self.self_training_queue_size}")


@register_method
class SelfTrainingLoss(AlignmentMethod):
    """Pseudo-label self-training with class-balanced selection and a warm-up (see the module docstring).

    Shape: logits ``(N, C)``, domain ``(N,)``; output a scalar ``>= 0`` (nats). Logged: ``mask_rate`` (share of the
    target rows selected) and ``ramp`` (the warm-up factor).

    Args:
        num_domains: source domains + 1.
        num_classes: ``C``, the classifier's labels.
        threshold: absolute confidence floor in ``[0, 1)``.
        class_fraction: CBST's share of each predicted class kept, in ``(0, 1]``.
        warmup: fraction of training before pseudo-labels count, in ``[0, 0.5]``.
        queue_size: confidences remembered per class for the ranking (>= 1).
        distribution_alignment: pseudo-labels, confidences and ranking from the target probabilities aligned to the
            batch's source predictions (module docstring).

    Raises:
        ValueError: on a value out of range.
    """

    name = "self_training"
    settings_class = SelfTrainingSettings

    def __init__(self, num_domains: int = 2, num_classes: int = 2, threshold: float = 0.0,
                 class_fraction: float = 0.5, warmup: float = 0.1, queue_size: int = 512,
                 distribution_alignment: bool = False):
        super().__init__(num_domains)
        SelfTrainingSettings(  # raises ValueError naming the setting out of range
            self_training_threshold=threshold, self_training_class_fraction=class_fraction,
            self_training_warmup=warmup, self_training_queue_size=queue_size,
        )
        self.threshold, self.class_fraction, self.warmup = threshold, class_fraction, warmup
        self.distribution_alignment = bool(distribution_alignment)
        self.ramp = 1.0 if warmup == 0 else 0.0
        # Persistent buffers: a resumed run ranks against the same history (identical on every process).
        self.register_buffer("queue", torch.zeros(num_classes, queue_size))
        self.register_buffer("filled", torch.zeros(num_classes, dtype=torch.long))
        self.register_buffer("cursor", torch.zeros(num_classes, dtype=torch.long))

    @classmethod
    def from_config(cls, config, feature_dim: int, num_domains: int, num_classes: int) -> SelfTrainingLoss:
        settings = config.settings_of(SelfTrainingSettings)
        return cls(num_domains, num_classes, settings.self_training_threshold, settings.self_training_class_fraction,
                   settings.self_training_warmup, settings.self_training_queue_size,
                   settings.self_training_distribution_alignment)

    def set_progress(self, progress: float) -> None:
        self.ramp = warmup_ramp(progress, self.warmup)

    @torch.no_grad()
    def remember(self, confidence: torch.Tensor, predicted: torch.Tensor) -> None:
        """Push ``(n,)`` confidences of rows predicted as ``(n,)`` classes into the per-class ring buffers."""
        size = self.queue.shape[1]
        for c in range(self.queue.shape[0]):
            values = confidence[predicted == c][-size:].to(self.queue.dtype)
            if not len(values):
                continue
            slots = (self.cursor[c] + torch.arange(len(values), device=values.device)) % size
            self.queue[c, slots] = values
            self.cursor[c] = (self.cursor[c] + len(values)) % size
            self.filled[c] = torch.clamp(self.filled[c] + len(values), max=size)

    def forward(self, features: torch.Tensor, domain: torch.Tensor,
                logits: torch.Tensor | None = None) -> AlignmentOutput:
        logits = self.require_logits(logits, self.name)
        target_logits = logits[domain == self.target_domain]
        with torch.no_grad():
            probs = torch.softmax(target_logits.detach().float(), dim=-1)
            if self.distribution_alignment:
                source_logits = logits[domain != self.target_domain].detach().float()
                if len(source_logits) and len(probs):
                    probs = distribution_alignment(probs, torch.softmax(source_logits, dim=-1))
            confidence, predicted = probs.max(-1)
            thresholds = class_thresholds(self.queue, self.filled, self.class_fraction)
            selected = (confidence >= self.threshold) & (confidence >= thresholds[predicted])
            # every process ranks against the same (global) history
            self.remember(gather_rows(confidence), gather_rows(predicted))
        per_row = F.cross_entropy(target_logits.float(), predicted, reduction="none")
        loss = self.ramp * (per_row * selected).sum() / max(len(per_row), 1)
        return AlignmentOutput(loss, {"mask_rate": selected.float().mean(),
                                      "ramp": torch.tensor(self.ramp, device=loss.device)})
