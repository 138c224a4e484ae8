"""Validators that reweight the labelled source-validation loss towards the target: IWV and DEV."""

from __future__ import annotations

import numpy as np
import torch

from .data import ValidationData
from .registry import register_validator


def density_ratio(source: torch.Tensor, target: torch.Tensor, clip: float = 100.0, seed: int = 0,
                  folds: int = 5) -> torch.Tensor:
    """``w(x) = p_t(x) / p_s(x)`` for each source row, from a logistic-regression domain classifier on the features
    (Bickel et al., JMLR 2009): ``w = (N_s / N_t) * P(target | x) / P(source | x)``, clipped to ``[0, clip]``.

    Each row's probability comes from a classifier fitted on the other folds (``folds``-fold cross-fitting, as DEV
    holds out data for its domain classifier): with a few hundred rows of 384-dimensional features a classifier
    scored on its own training rows separates the domains perfectly and every weight collapses to 0.

    Args:
        source: ``(N_s, F)`` source features; target: ``(N_t, F)`` target features.

    Returns:
        ``(N_s,)`` float64 weights.
    """
    # imported here: `import hfadapt` registers this validator and must not pay for scikit-learn's import
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = torch.cat([source, target]).double().numpy()
    y = np.r_[np.zeros(len(source)), np.ones(len(target))]
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000, random_state=seed))
    k = max(2, min(folds, len(source), len(target)))
    split = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    p_target = cross_val_predict(classifier, x, y, cv=split, method="predict_proba")[: len(source), 1]
    p_target = p_target.clip(1e-6, 1 - 1e-6)
    w = (len(source) / len(target)) * p_target / (1 - p_target)
    return torch.from_numpy(w.clip(0, clip))


def importance_weighted_risk(losses: torch.Tensor, weights: torch.Tensor, normalise: bool = False) -> float:
    """IWV's estimate of the target risk, ``mean_i w_i * l_i`` (Sugiyama, Krauledat & Mueller, JMLR 2007); with
    ``normalise``, the self-normalised ``sum_i w_i l_i / sum_i w_i`` (biased, but robust to a domain classifier
    whose weights do not average 1)."""
    weighted = (weights.double() * losses.double()).mean()
    return float(weighted / weights.double().mean().clamp_min(1e-12) if normalise else weighted)


def deep_embedded_validation_risk(losses: torch.Tensor, weights: torch.Tensor) -> float:
    """DEV's target risk (You, Wang, Long & Jordan, ICML 2019): with ``L_i = w_i l_i`` and the control variate
    ``w`` (whose mean is 1 in expectation), ``eta = -Cov(L, w) / Var(w)`` and
    ``risk = mean(L) + eta * mean(w) - eta``. Lower variance than IWV; equals it when ``w`` is constant."""
    weighted, w = weights.double() * losses.double(), weights.double()
    variance = w.var(unbiased=True) if len(w) > 1 else torch.zeros((), dtype=torch.float64)
    if variance <= 1e-12:
        return float(weighted.mean())
    covariance = ((weighted - weighted.mean()) * (w - w.mean())).sum() / (len(w) - 1)
    eta = -covariance / variance
    return float(weighted.mean() + eta * w.mean() - eta)


def source_losses(data: ValidationData) -> torch.Tensor:
    """Cross-entropy of each source-validation row, ``(N_s,)``."""
    picked = data.source_probs.double().gather(1, data.source_labels.long()[:, None])[:, 0]
    return -picked.clamp_min(1e-12).log()


def source_importance_weights(data: ValidationData) -> torch.Tensor:
    """:func:`density_ratio` of the source-validation rows, ``(N_s,)``, fitted once per :class:`ValidationData`."""
    if "density_ratio" not in data.derived:
        data.derived["density_ratio"] = density_ratio(data.source_features, data.target_features)
    return data.derived["density_ratio"]


@register_validator("iwv")
def iwv_score(data: ValidationData) -> float:
    """Minus the self-normalised importance-weighted source-validation cross-entropy (higher is better)."""
    weights = source_importance_weights(data)
    return -importance_weighted_risk(source_losses(data), weights, normalise=True)


@register_validator("dev")
def dev_score(data: ValidationData) -> float:
    """Minus deep embedded validation's risk on the source-validation cross-entropy (higher is better)."""
    weights = source_importance_weights(data)
    return -deep_embedded_validation_risk(source_losses(data), weights)
