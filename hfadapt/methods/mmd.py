"""MK-MMD: multi-kernel maximum mean discrepancy between source and target features.

Gretton, Borgwardt, Rasch, Schoelkopf, Smola, "A Kernel Two-Sample Test", JMLR 2012 (the estimator);
Long, Cao, Wang, Jordan, "Learning Transferable Features with Deep Adaptation Networks" (DAN), ICML 2015
(the multi-kernel loss for domain adaptation).

With Gaussian kernels ``k_u(x, y) = exp(-||x - y||^2 / (2 sigma_u^2))`` and equal weights
``beta_u = 1 / m`` (DAN constrains ``sum_u beta_u = 1``), ``k = sum_u beta_u k_u``, two estimators:

- ``"unbiased"`` (default; Gretton et al. 2012, eq. 3, and Lemma 6 for ``N_s = N_t``)::

      MMD^2_u = mean_{i != j} k(s_i, s_j) + mean_{i != j} k(t_i, t_j) - 2 mean_{i (!= j if N_s = N_t)} k(s_i, t_j)

  exactly 0 for identical samples of equal size; it can be slightly negative.
- ``"biased"`` (V-statistic): the same with every ``i = j`` term kept; 0 for identical samples, never negative.
- ``"linear"`` (Gretton et al. 2012, section 6, Lemma 14): the mean of
  ``h = k(s_a, s_b) + k(t_a, t_b) - k(s_a, t_b) - k(s_b, t_a)`` over disjoint pairs ``a = 2i, b = 2i + 1`` of the
  first ``2 * floor(min(N_s, N_t) / 2)`` rows: O(N F) instead of O(N^2 F), unbiased, with a higher variance.

The biased estimate carries the self-similarity terms ``k(x, x) = 1``: on batches of 16 + 16 they add about
``(1 - mean k) (1/N_s + 1/N_t)`` (0.05 here), whose gradient pulls all rows of a domain together. On
MiniLM sentiment batches that collapsed the features (task loss stuck at log 2); the unbiased form has no such
term, which is why it is the default.

Bandwidths follow DAN's practice of scaling a data-driven base: ``sigma_u^2 = multiplier_u * mean(||x - y||^2)``
over all pairs of distinct rows in the batch (the base is detached, so no gradient flows through the
bandwidth; for ``"linear"`` the base is the mean of the squared distances the statistic uses, keeping it O(N F)).
Cost of the quadratic estimators is O((N_s + N_t)^2 F).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .base import AlignmentMethod, AlignmentOutput
from .registry import register_method
from .settings import check_weights

MMD_ESTIMATORS = ("unbiased", "biased", "linear")


def multi_kernel_mmd(
    source: torch.Tensor,
    target: torch.Tensor,
    multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
    base_bandwidth: float | None = None,
    estimator: str = "unbiased",
) -> torch.Tensor:
    """MK-MMD^2 estimate between two samples with a family of Gaussian kernels.

    Args:
        source: ``(N_s, F)`` features.
        target: ``(N_t, F)`` features, same ``F``.
        multipliers: kernel ``u`` uses ``sigma_u^2 = multipliers[u] * base``.
        base_bandwidth: fixed ``base`` (squared distance units); ``None`` uses the batch's mean pairwise
            squared distance.
        estimator: ``"unbiased"`` (U-statistic) or ``"biased"`` (V-statistic), see the module docstring.

    Returns:
        Scalar tensor (``>= 0`` for ``"biased"``).

    Raises:
        ValueError: on empty samples (fewer than 2 rows per sample for ``"unbiased"``), different feature
            widths, non-positive multipliers or an unknown estimator.
    """
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(f"MMD needs (N_s, F) and (N_t, F) features, got {tuple(source.shape)} "
                         f"and {tuple(target.shape)}")
    check_estimate(len(source), len(target), multipliers, estimator)
    if estimator == "linear":
        return linear_time_mmd(source, target, multipliers, base_bandwidth)
    kernel = gaussian_kernel_matrix(torch.cat([source, target]), multipliers, base_bandwidth)
    return mmd_from_kernel(kernel, len(source), estimator)


def linear_time_mmd(
    source: torch.Tensor, target: torch.Tensor, multipliers: Sequence[float], base_bandwidth: float | None = None
) -> torch.Tensor:
    """The linear-time MK-MMD^2 statistic (module docstring): ``(N_s, F)``, ``(N_t, F)`` -> scalar, O(N F).

    Needs at least 2 rows per side; :func:`multi_kernel_mmd` checks that and raises ``ValueError`` otherwise."""
    m = min(len(source), len(target)) // 2 * 2
    s_a, s_b, t_a, t_b = source[0:m:2].float(), source[1:m:2].float(), target[0:m:2].float(), target[1:m:2].float()
    distances = [(u - v).pow(2).sum(-1) for u, v in ((s_a, s_b), (t_a, t_b), (s_a, t_b), (s_b, t_a))]
    if base_bandwidth is None:
        base = torch.cat(distances).detach().mean().clamp_min(torch.finfo(torch.float32).tiny)
    else:
        base = torch.as_tensor(float(base_bandwidth), device=source.device)
    k_ss, k_tt, k_st, k_ts = (kernel_mixture(d, multipliers, base) for d in distances)
    return (k_ss + k_tt - k_st - k_ts).mean()


def check_estimate(
    n_source: int, n_target: int, multipliers: Sequence[float], estimator: str, what: str = "MMD"
) -> None:
    """Raise ``ValueError`` for an unknown estimator, too few rows for it, or non-positive kernel multipliers."""
    if estimator not in MMD_ESTIMATORS:
        raise ValueError(f"estimator must be one of {MMD_ESTIMATORS}, got {estimator!r}")
    min_rows = 1 if estimator == "biased" else 2
    if n_source < min_rows or n_target < min_rows:
        raise ValueError(f"the {estimator} {what} needs at least {min_rows} source and {min_rows} target row(s)")
    if not multipliers or any(m <= 0 for m in multipliers):
        raise ValueError(f"kernel multipliers must be positive, got {list(multipliers)}")


def gaussian_kernel_matrix(
    x: torch.Tensor, multipliers: Sequence[float], base_bandwidth: float | None = None
) -> torch.Tensor:
    """Mean of Gaussian kernels ``exp(-||x_i - x_j||^2 / (2 m_u base))`` over ``u``: ``(N, F)`` -> ``(N, N)``.

    ``base`` is ``base_bandwidth`` or, if ``None``, the mean squared distance between distinct rows (detached).
    """
    x = x.float()
    sq_dist = torch.cdist(x, x).pow(2)
    if base_bandwidth is None:
        n = len(x)
        base = sq_dist.detach().sum() / max(n * n - n, 1)
        base = base.clamp_min(torch.finfo(base.dtype).tiny)
    else:
        base = torch.as_tensor(float(base_bandwidth), device=x.device)
    return kernel_mixture(sq_dist, multipliers, base)


def kernel_mixture(sq_dist: torch.Tensor, multipliers: Sequence[float], base: torch.Tensor) -> torch.Tensor:
    """``mean_u exp(-d / (2 m_u base))`` elementwise over squared distances ``d`` (any shape): the equal-weight
    multi-kernel of DAN."""
    return sum(torch.exp(-sq_dist / (2.0 * m * base)) for m in multipliers) / len(multipliers)


def mmd_from_kernel(kernel: torch.Tensor, n_source: int, estimator: str = "unbiased") -> torch.Tensor:
    """MMD^2 from a kernel matrix ``(N, N)`` over source rows ``[:n_source]`` then target rows; scalar.

    The estimators are those of the module docstring; the unbiased one needs at least 2 rows on each side.
    """
    n_s = n_source
    k_ss, k_tt, k_st = kernel[:n_s, :n_s], kernel[n_s:, n_s:], kernel[:n_s, n_s:]
    if estimator == "biased":
        return k_ss.mean() + k_tt.mean() - 2.0 * k_st.mean()
    n_t = len(kernel) - n_s
    cross = (
        (k_st.sum() - k_st.diagonal().sum()) / (n_s * (n_s - 1))  # Lemma 6: pairs (s_i, t_i) left out
        if n_s == n_t
        else k_st.mean()
    )
    return _off_diagonal_mean(k_ss) + _off_diagonal_mean(k_tt) - 2.0 * cross


def _off_diagonal_mean(k: torch.Tensor) -> torch.Tensor:
    n = len(k)
    return (k.sum() - k.diagonal().sum()) / (n * (n - 1))


@dataclass
class MMDSettings:
    """MK-MMD's settings (DAN, Long et al., ICML 2015); JAN reads the kernels and the estimator too.

    Raises:
        ValueError: from ``__post_init__`` on a negative weight, an empty or non-positive kernel list or an
            unknown estimator.
    """

    mmd_weight: float = field(
        default=0.1,
        metadata={"help": "Weight of the MK-MMD loss (with alignment_balancing='gradient': its share of the task's "
                  "feature gradient)."},
    )
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

    def __post_init__(self):
        check_weights(self, "mmd_weight")
        if not self.mmd_kernel_multipliers or any(not m > 0 for m in self.mmd_kernel_multipliers):
            raise ValueError(
                "mmd_kernel_multipliers must be a non-empty list of positive numbers, "
                f"got {self.mmd_kernel_multipliers}"
            )
        if self.mmd_estimator not in MMD_ESTIMATORS:
            raise ValueError(f"mmd_estimator must be one of {MMD_ESTIMATORS}, got {self.mmd_estimator!r}")


@register_method
class MultiKernelMMDLoss(AlignmentMethod):
    """MK-MMD loss between all source rows and the target rows of a batch (no trainable parameters).

    Under gradient accumulation each micro-batch gives its own estimate (MMD is not linear in the batch),
    so 1 x 8 and 2 x 4 differ for this loss, unlike for the task and DANN losses.

    Shape: features ``(N, F)``, domain ``(N,)``; output a scalar loss. With several source domains the
    sources are pooled into one sample.
    """

    name = "mmd"
    settings_class = MMDSettings
    batch_statistic = True
    feature_scale_dependent = True

    def __init__(
        self,
        num_domains: int = 2,
        multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
        estimator: str = "unbiased",
    ):
        super().__init__(num_domains)
        if estimator not in MMD_ESTIMATORS:
            raise ValueError(f"estimator must be one of {MMD_ESTIMATORS}, got {estimator!r}")
        self.multipliers = tuple(float(m) for m in multipliers)
        self.estimator = estimator

    @classmethod
    def from_config(cls, config, feature_dim: int, num_domains: int, num_classes: int) -> MultiKernelMMDLoss:
        settings = config.settings_of(MMDSettings)
        return cls(num_domains, settings.mmd_kernel_multipliers, settings.mmd_estimator)

    def forward(self, features: torch.Tensor, domain: torch.Tensor,
                logits: torch.Tensor | None = None) -> AlignmentOutput:
        source, target = self.split(features, domain)
        return AlignmentOutput(multi_kernel_mmd(source, target, self.multipliers, estimator=self.estimator))

    def extra_repr(self) -> str:
        return f"multipliers={self.multipliers}, estimator={self.estimator!r}"
