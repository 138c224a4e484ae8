"""FixMatch on the target domain: confident weak-view predictions as pseudo-labels for a strong view.

Sohn, Berthelot, Li, Zhang, Carlini, Cubuk, Kurakin, Zhang & Raffel, "FixMatch: Simplifying Semi-Supervised
Learning with Consistency and Confidence", NeurIPS 2020. For the ``M`` target rows of a batch, with weak-view
probabilities ``q_i = softmax(z_i^weak)`` and strong-view logits ``z_i^strong``:

    L = (1 / M) sum_i 1[max_c q_ic >= tau] * CE(z_i^strong, argmax_c q_ic)

The denominator counts every target row, kept or not, as in the paper: the loss grows as more rows pass the
threshold ``tau`` (``fixmatch_threshold``, the paper's 0.95). The weak view is the main forward's target logits
(dropout only); the strong view a second forward of the model on augmented target inputs
(:mod:`hfadapt.methods.consistency`). Logged: ``fixmatch_mask_rate``, the share of target rows kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .base import AlignmentOutput
from .consistency import DEFAULT_AUGMENTATION, ConsistencyMethod, check_augmentation
from .registry import register_method
from .settings import check_fraction, check_weights


def confidence_masked_cross_entropy(strong_logits: torch.Tensor, pseudo_labels: torch.Tensor,
                                    mask: torch.Tensor) -> torch.Tensor:
    """``mean_i mask_i * CE(strong_i, pseudo_i)`` over all ``M`` rows: ``(M, C)``, ``(M,)``, ``(M,)`` -> scalar."""
    per_row = F.cross_entropy(strong_logits.float(), pseudo_labels, reduction="none")
    return (per_row * mask.to(per_row.dtype)).mean()


def fixmatch_loss(weak_logits: torch.Tensor, strong_logits: torch.Tensor,
                  threshold: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """FixMatch's unlabelled loss.

    Args:
        weak_logits: ``(M, C)``, the weak view's logits (detached here).
        strong_logits: ``(M, C)``, the strong view's logits (gradient flows).
        threshold: confidence ``tau`` in ``[0, 1]``.

    Returns:
        ``(loss, mask)``: the scalar loss (0 when no row passes) and the ``(M,)`` bool mask of kept rows.

    Raises:
        ValueError: if the shapes differ.
    """
    if weak_logits.shape != strong_logits.shape:
        raise ValueError(f"weak and strong logits differ in shape: {tuple(weak_logits.shape)} vs "
                         f"{tuple(strong_logits.shape)}")
    confidence, pseudo_labels = torch.softmax(weak_logits.detach().float(), dim=-1).max(-1)
    mask = confidence >= threshold
    return confidence_masked_cross_entropy(strong_logits, pseudo_labels, mask), mask


@dataclass
class FixMatchSettings:
    """FixMatch's settings (Sohn et al., NeurIPS 2020).

    Raises:
        ValueError: from ``__post_init__`` on a negative weight, a threshold outside ``[0, 1]`` or an augmentation
            spec that does not parse.
    """

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

    def __post_init__(self):
        check_weights(self, "fixmatch_weight")
        check_fraction(self, "fixmatch_threshold", high_open=False)
        check_augmentation(self, "fixmatch_augmentation")


@register_method
class FixMatchLoss(ConsistencyMethod):
    """FixMatch on the target rows (module docstring). Shape: logits ``(N, C)``; output a scalar loss and
    ``metrics = {"mask_rate": share of target rows above the threshold}``.

    Args:
        num_domains: source domains + 1.
        augmentation: the strong view's spec (:mod:`hfadapt.augmentation`).
        threshold: ``tau`` in ``[0, 1]``.

    Raises:
        ValueError: on a threshold outside ``[0, 1]`` or a bad spec; in :meth:`bind`, see
            :class:`~hfadapt.methods.consistency.ConsistencyMethod`.
    """

    name = "fixmatch"
    needs_target_gradient = False  # the main forward's target rows are the weak view, detached
    settings_class = FixMatchSettings

    def __init__(self, num_domains: int = 2, augmentation: str = DEFAULT_AUGMENTATION, threshold: float = 0.95):
        super().__init__(num_domains, augmentation)
        FixMatchSettings(fixmatch_threshold=threshold)  # raises ValueError naming the setting out of range
        self.threshold = float(threshold)

    @classmethod
    def from_config(cls, config, feature_dim: int, num_domains: int, num_classes: int) -> FixMatchLoss:
        settings = config.settings_of(FixMatchSettings)
        return cls(num_domains, settings.fixmatch_augmentation, settings.fixmatch_threshold)

    def forward(self, features: torch.Tensor, domain: torch.Tensor, logits: torch.Tensor | None = None,
                target_inputs: dict | None = None) -> AlignmentOutput:
        """FixMatch's loss on the target rows.

        Args:
            features: ``(N, F)``, unused.
            domain: ``(N,)`` domain ids.
            logits: ``(N, C)`` of the main forward (the target rows' are the weak view).
            target_inputs: the target rows' model inputs, from :meth:`prepare_inputs`.

        Raises:
            ValueError: if the logits or ``target_inputs`` are missing.
        """
        weak = self.weak_logits(domain, logits)
        strong = self.student_logits(self.augment(self.require_target_inputs(target_inputs)))
        loss, mask = fixmatch_loss(weak, strong, self.threshold)
        return AlignmentOutput(loss, {"mask_rate": mask.float().mean()})
