"""The datasets an :class:`~hfadapt.AdaptTrainer` is given, named by domain: source domains, eval sets."""

from __future__ import annotations

from collections.abc import Sequence

import datasets

from ...data.mixing import DOMAIN_COLUMN
from ...data.transforms import keep_only


def named_sources(train_dataset) -> dict[str, datasets.Dataset]:
    """``{name: dataset}`` of the source domains: one ``Dataset`` is the single domain ``"source"``.

    Raises:
        TypeError: ``train_dataset`` is neither a ``Dataset`` nor a dict of them.
        ValueError: an empty dict, or a domain name that is not an identifier or is ``"target"``.
    """
    if isinstance(train_dataset, datasets.Dataset):
        return {"source": train_dataset}
    if isinstance(train_dataset, dict | datasets.DatasetDict):
        if not train_dataset:
            raise ValueError("train_dataset is an empty dict: give at least one labelled source domain")
        bad = [n for n in train_dataset if not str(n).isidentifier() or n == "target"]
        if bad:
            raise ValueError(f"source domain names must be identifiers other than 'target' (they name logged "
                             f"keys such as loss_task_<name>), got {bad}")
        return dict(train_dataset)
    raise TypeError(f"train_dataset must be a datasets.Dataset or a dict of them (one per source domain), "
                    f"got {type(train_dataset).__name__}")


def named_evals(eval_dataset) -> dict[str, datasets.Dataset]:
    """``{name: dataset}`` of the eval sets: a dict as given, one ``Dataset`` as ``"eval"``, ``None`` as none."""
    if isinstance(eval_dataset, dict):
        return eval_dataset
    return {"eval": eval_dataset} if eval_dataset is not None else {}


def eval_sets(evals: dict[str, datasets.Dataset], columns: Sequence[str]) -> dict[str, datasets.Dataset]:
    """Each eval set cut to ``columns`` (model inputs and labels); a set's own ``domain`` column (e.g. a domain
    name) is dropped first, as it is not the domain id the model takes."""
    evals = {name: ds.remove_columns(DOMAIN_COLUMN) if DOMAIN_COLUMN in ds.column_names else ds
             for name, ds in evals.items()}
    return {name: keep_only(ds, list(columns)) for name, ds in evals.items()}
