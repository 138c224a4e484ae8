"""Model fusion: several trained classifiers saved as one model that ``from_pretrained`` loads.

- :mod:`~hfadapt.fusion.ensemble`: average the members' predicted probabilities (one saved model runs them all).
- :mod:`~hfadapt.fusion.soup`, :mod:`~hfadapt.fusion.wise_ft`: average the weights of models of one architecture
  (uniform and greedy model soups; WiSE-FT between a source-only and an adapted model).
"""

from .averaging import average_state_dicts
from .ensemble import EnsembleConfig, EnsembleForClassification
from .soup import GreedySoupResult, greedy_soup, uniform_soup
from .wise_ft import wise_ft

__all__ = [
    "EnsembleConfig",
    "EnsembleForClassification",
    "GreedySoupResult",
    "average_state_dicts",
    "greedy_soup",
    "uniform_soup",
    "wise_ft",
]
