"""Instance-based transfer: importance weighting of source examples by a domain classifier's density ratio.

Covariate-shift correction (Shimodaira, "Improving predictive inference under covariate shift by weighting the
log-likelihood function", J. Stat. Plan. Inference 2000) with the ratio estimated discriminatively (Bickel,
Brueckner, Scheffer, "Discriminative Learning Under Covariate Shift", JMLR 2009): a classifier ``D`` that
tells target rows from source rows gives

    w(x) = p_t(x) / p_s(x) = [P(t | x) / P(s | x)] * [P(s) / P(t)]

``D`` is trained with the domain-balanced cross-entropy (each domain's rows averaged first, as DANN's
discriminator), so its priors are equal per domain whatever the batch proportion: ``P(s) / P(t)`` is the number
of source domains (1 for single-source). Ratios are clipped to ``[1 / clip, clip]``, flattened to the power
``lambda`` in ``[0, 1]`` (Shimodaira's flattening: ``lambda = 0`` is unweighted training, ``lambda = 1`` the full
correction; intermediate values trade the correction's bias against the variance of a few heavy rows) and
normalised to mean 1 over the batch's source rows, then used as per-example weights of the task loss:
``L_task = sum_i w_i CE_i / sum_i w_i`` over source rows.

``D`` reads *detached* features: it estimates the shift without changing the encoder (combine with ``dann``,
``mmd``, ... to also align). With several source domains ``D`` is a ``num_domains``-way classifier and
``P(s | x) = 1 - P(t | x)`` pools the sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .base import AlignmentMethod, AlignmentOutput
from .dann import DomainDiscriminator, domain_balanced_cross_entropy
from .discriminator import DiscriminatorSettings
from .registry import register_method
from .settings import check_fraction, check_weights


def density_ratio_weights(target_probability: torch.Tensor, prior_ratio: float = 1.0, clip: float = 10.0,
                          flattening: float = 1.0) -> torch.Tensor:
    """Importance weights of source rows from a domain classifier's ``P(t | x)``.

    Args:
        target_probability: ``(N_s,)`` the classifier's probability that each *source* row is a target row.
        prior_ratio: ``P(s) / P(t)`` under which the classifier was trained.
        clip: ratios ``odds * prior_ratio`` are clipped to ``[1 / clip, clip]`` before normalising (``clip >= 1``).
        flattening: exponent ``lambda`` in ``[0, 1]`` applied to the clipped ratios.

    Returns:
        ``(N_s,)`` non-negative weights with mean 1 (detached).

    Raises:
        ValueError: on ``clip < 1``, ``flattening`` outside ``[0, 1]``, a non-positive ``prior_ratio`` or an empty
            input.
    """
    if clip < 1:
        raise ValueError(f"clip must be >= 1, got {clip}")
    if not 0.0 <= flattening <= 1.0:
        raise ValueError(f"flattening must be in [0, 1], got {flattening}")
    if not prior_ratio > 0 or target_probability.numel() == 0:
        raise ValueError(f"importance weights need source rows and prior_ratio > 0, got {target_probability.numel()} "
                         f"rows and {prior_ratio}")
    p = target_probability.detach().float().clamp(1e-6, 1 - 1e-6)
    ratio = (p / (1 - p)) * prior_ratio
    ratio = ratio.clamp(1.0 / clip, clip) ** flattening
    return ratio / ratio.mean()


@dataclass
class IWSettings:
    """Importance weighting's settings (Shimodaira, J. Stat. Plan. Inference 2000; the classifier is the shared
    :class:`~hfadapt.methods.discriminator.DiscriminatorSettings`).

    Raises:
        ValueError: from ``__post_init__`` on a negative weight, ``iw_clip < 1`` or ``iw_flattening`` outside
            ``[0, 1]``.
    """

    iw_weight: float = field(
        default=1.0,
        metadata={"help": "Weight of the importance-weighting domain classifier's loss "
                  "(it trains only that classifier)."},
    )
    iw_clip: float = field(
        default=10.0, metadata={"help": "Importance weights p_t(x)/p_s(x) are clipped to [1/iw_clip, iw_clip] (>= 1)."}
    )
    iw_flattening: float = field(
        default=0.5,
        metadata={"help": "Exponent lambda in [0, 1] of the clipped importance weights (Shimodaira 2000's flattening: "
                          "0 = unweighted, 1 = the full density ratio)."},
    )

    def __post_init__(self):
        check_weights(self, "iw_weight")
        if not self.iw_clip >= 1:
            raise ValueError(f"iw_clip must be >= 1, got {self.iw_clip}")
        check_fraction(self, "iw_flattening", high_open=False)


@register_method
class ImportanceWeighting(AlignmentMethod):
    """Trains a domain classifier on detached features and weights the source rows' task loss by its
    density-ratio estimate (see the module docstring).

    Shape: features ``(N, F)``, domain ``(N,)``; output: the classifier's loss (it trains only the classifier),
    ``source_weights (N_s,)`` for the source rows in batch order, and metrics ``accuracy`` (of the classifier),
    ``max_weight`` and ``ess`` (effective sample size over ``N_s``, ``(sum w)^2 / (N_s sum w^2)``, 1 for equal
    weights).
    """

    name = "iw"
    settings_class = IWSettings

    def __init__(
        self,
        feature_dim: int,
        num_domains: int = 2,
        hidden_size: int = 256,
        num_layers: int = 2,
        dropout: float = 0.1,
        clip: float = 10.0,
        flattening: float = 1.0,
    ):
        super().__init__(num_domains)
        IWSettings(iw_clip=clip, iw_flattening=flattening)  # raises ValueError naming the setting out of range
        self.clip = float(clip)
        self.flattening = float(flattening)
        self.classifier = DomainDiscriminator(feature_dim, hidden_size, num_layers, num_domains, dropout)

    @classmethod
    def from_config(cls, config, feature_dim: int, num_domains: int, num_classes: int) -> ImportanceWeighting:
        discriminator, settings = config.settings_of(DiscriminatorSettings), config.settings_of(IWSettings)
        return cls(feature_dim, num_domains, discriminator.discriminator_hidden_size,
                   discriminator.discriminator_num_layers, discriminator.discriminator_dropout, settings.iw_clip,
                   settings.iw_flattening)

    def forward(self, features: torch.Tensor, domain: torch.Tensor,
                logits: torch.Tensor | None = None) -> AlignmentOutput:
        domain_logits = self.classifier(features.detach())
        loss = domain_balanced_cross_entropy(domain_logits, domain, self.num_domains)
        is_target = domain == self.target_domain
        with torch.no_grad():
            p_target = torch.softmax(domain_logits[~is_target].float(), dim=-1)[:, self.target_domain]
            weights = density_ratio_weights(p_target, prior_ratio=self.num_domains - 1, clip=self.clip,
                                            flattening=self.flattening)
            accuracy = (domain_logits.argmax(-1) == domain).float().mean()
            ess = weights.sum() ** 2 / (len(weights) * (weights**2).sum())
        return AlignmentOutput(loss, {"accuracy": accuracy, "max_weight": weights.max(), "ess": ess},
                               source_weights=weights)

    def extra_repr(self) -> str:
        return f"clip={self.clip}, flattening={self.flattening}"
