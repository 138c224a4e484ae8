"""Model fusion: several trained classifiers saved as one model that ``from_pretrained`` loads.

- :mod:`~hfadapt.fusion.ensemble`: average the members' predicted probabilities (one saved model runs them all).
- :mod:`~hfadapt.fusion.soup`, :mod:`~hfadapt.fusion.wise_ft`: average the weights of models of one architecture
  (uniform and greedy model soups; WiSE-FT between a source-only and an adapted model).
- :mod:`~hfadapt.fusion.ema`: an exponential moving average of the weights during training
  (``AdaptConfig.weight_ema_decay``).
"""

from .averaging import average_state_dicts
from .ema import WeightEMACallback
from .ensemble import EnsembleConfig, EnsembleForClassification
from .soup import GreedySoupResult, greedy_soup, uniform_soup
from .wise_ft import wise_ft

__all__ = [
    "EnsembleConfig",
    "EnsembleForClassification",
    "GreedySoupResult",
    "WeightEMACallback",
    "average_state_dicts",
    "greedy_soup",
    "uniform_soup",
    "wise_ft",
]
