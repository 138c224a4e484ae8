"""Model fusion: several trained classifiers saved as one model that ``from_pretrained`` loads.

- :mod:`~hfadapt.fusion.ensemble`: average the members' predicted probabilities (one saved model runs them all).
- :mod:`~hfadapt.fusion.soup`, :mod:`~hfadapt.fusion.wise_ft`: average the weights of models of one architecture
  (uniform and greedy model soups; WiSE-FT between a source-only and an adapted model).
- :mod:`~hfadapt.fusion.ema`: an exponential moving average of the weights during training
  (``AdaptConfig.weight_ema_decay``).
- :mod:`~hfadapt.fusion.folders`: the same from saved folders to a saved folder (``hfadapt fuse``).
"""

from .averaging import average_state_dicts
from .ema import WeightEMACallback
from .ensemble import EnsembleConfig, EnsembleForClassification
from .folders import FUSION_MODES, fuse_folders, load_classifier, save_fused
from .soup import GreedySoupResult, greedy_soup, uniform_soup
from .wise_ft import wise_ft

__all__ = [
    "FUSION_MODES",
    "EnsembleConfig",
    "EnsembleForClassification",
    "GreedySoupResult",
    "WeightEMACallback",
    "average_state_dicts",
    "fuse_folders",
    "greedy_soup",
    "load_classifier",
    "save_fused",
    "uniform_soup",
    "wise_ft",
]
