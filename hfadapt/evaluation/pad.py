"""Proxy A-distance between source and target features (Ben-David, Blitzer, Crammer & Pereira, NeurIPS 2007;
Ben-David et al., Machine Learning 2010; used as in Ganin et al., JMLR 2016, section 5.1.4)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

PAD_MIN_ROWS = 4
"""Rows per domain the proxy A-distance needs: half train the SVM, half test it, with both domains in each half."""


def proxy_a_distance(source: torch.Tensor, target: torch.Tensor, seed: int = 0,
                     c_values: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)) -> float:
    """``PAD = 2 (1 - 2 eps)``, ``eps`` the test error of a linear SVM telling source from target features.

    Half of the rows of each domain train the SVM (standardised features, one ``C`` per value of ``c_values``),
    the other half measure its error; the smallest error is kept, as Ganin et al. do. PAD is near 0 when the
    domains cannot be told apart and 2 when they separate perfectly; it is clipped to ``[0, 2]``.

    Args:
        source: ``(N_s, F)`` features of source rows; target: ``(N_t, F)`` of target rows.

    Raises:
        ValueError: with fewer than 4 rows in a domain or different feature widths.
    """
    if len(source) < PAD_MIN_ROWS or len(target) < PAD_MIN_ROWS:
        raise ValueError(f"proxy A-distance needs at least {PAD_MIN_ROWS} rows per domain, got {len(source)} and "
                         f"{len(target)}")
    if source.shape[1:] != target.shape[1:]:
        raise ValueError(f"source and target features differ in width: {tuple(source.shape)} vs {tuple(target.shape)}")
    x = torch.cat([source, target]).double().numpy()
    y = np.r_[np.zeros(len(source)), np.ones(len(target))]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.5, stratify=y, random_state=seed)
    errors = []
    for c in c_values:
        svm = make_pipeline(StandardScaler(), LinearSVC(C=c, max_iter=5000, random_state=seed))
        svm.fit(x_train, y_train)
        errors.append(float((svm.predict(x_test) != y_test).mean()))
    return float(np.clip(2.0 * (1.0 - 2.0 * min(errors)), 0.0, 2.0))
