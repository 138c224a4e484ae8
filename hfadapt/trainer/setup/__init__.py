"""The steps :class:`~hfadapt.AdaptTrainer` runs on its arguments before ``Trainer.__init__``, each an idea of its
own: name the datasets by domain and cut eval sets to what the model reads (:mod:`.domains`), refuse what cannot
train (:mod:`.checks`), run the model once on every set (:mod:`.probe`)."""

from .checks import check_datasets, check_model, check_stored_inputs
from .domains import eval_sets, named_evals, named_sources
from .probe import probe_datasets, probe_feature_dim

__all__ = [
    "check_datasets",
    "check_model",
    "check_stored_inputs",
    "eval_sets",
    "named_evals",
    "named_sources",
    "probe_datasets",
    "probe_feature_dim",
]
