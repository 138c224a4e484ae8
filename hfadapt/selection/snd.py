"""Soft neighbourhood density (Saito, Kim, Teterwak, Sclaroff, Darrell & Saenko, "Tune it the Right Way:
Unsupervised Validation of Domain Adaptation via Soft Neighborhood Density", ICCV 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import ValidationData
from .registry import register_validator

SND_TEMPERATURE = 0.05
"""The paper's temperature tau."""


def soft_neighbourhood_density(x: torch.Tensor, temperature: float = SND_TEMPERATURE) -> float:
    """SND of ``(N, D)`` vectors: L2-normalise rows, similarities ``S = x x^T / tau`` with the diagonal set to
    ``-1 / tau`` (a point is not its own neighbour), row-wise softmax, then the mean entropy of the rows.

    High when each point has many close neighbours (dense, clustered target predictions); low when points are
    isolated. Raises ``ValueError`` with fewer than 2 rows or a non-positive temperature.
    """
    if len(x) < 2:
        raise ValueError(f"SND needs at least 2 target rows, got {len(x)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    x = F.normalize(x.double(), dim=-1)
    sim = x @ x.T / temperature
    sim.fill_diagonal_(-1.0 / temperature)
    p = sim.softmax(-1)
    return float(-(p * p.clamp_min(1e-300).log()).sum(-1).mean())


@register_validator("snd")
def snd_score(data: ValidationData) -> float:
    """SND of the target class probabilities (the paper's default input), temperature 0.05; higher is better."""
    return soft_neighbourhood_density(data.target_probs)
