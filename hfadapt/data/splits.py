"""The evaluation protocol of cross-domain classification, as one reusable split of two labelled domains."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import datasets


@dataclass
class TransferSplits:
    """The four datasets of one source -> target transfer.

    Attributes:
        source_train: labelled source rows for training; with several source domains a ``DatasetDict``
            ``{domain: rows}`` (what :class:`~hfadapt.AdaptTrainer` takes for multi-source adaptation).
        source_val: held-out labelled source rows (source validation accuracy), all source domains together.
        target_train: target rows *without* their label column: the unlabelled training data.
        target_test: labelled target rows, for the final test only; ``None`` when the target has no labels.
        label_names: class names shared by both domains.
    """

    source_train: datasets.Dataset | datasets.DatasetDict
    source_val: datasets.Dataset
    target_train: datasets.Dataset
    target_test: datasets.Dataset | None
    label_names: list[str]

    def sizes(self) -> dict[str, int]:
        """Row counts of the datasets by field name (``target_test`` left out when there is none)."""
        def size(ds):
            return sum(len(d) for d in ds.values()) if isinstance(ds, datasets.DatasetDict) else len(ds)

        return {f.name: size(getattr(self, f.name)) for f in fields(self)
                if f.name != "label_names" and getattr(self, f.name) is not None}

    def map(self, function, desc: str = "processing", **kwargs) -> TransferSplits:
        """Apply ``datasets.Dataset.map(function, **kwargs)`` to every dataset (e.g. tokenisation)."""
        return replace(
            self,
            **{name: getattr(self, name).map(function, desc=f"{desc} {name}", **kwargs) for name in self.sizes()},
        )

    def with_transform(self, train_transform, eval_transform=None) -> TransferSplits:
        """Every dataset with a lazy ``with_transform`` (images through an image processor): ``train_transform`` on
        the training sets (where augmentation may go), ``eval_transform`` (default the same) on the others."""
        eval_transform = eval_transform or train_transform

        def apply(name, ds):
            fn = train_transform if name in ("source_train", "target_train") else eval_transform
            if isinstance(ds, datasets.DatasetDict):
                return datasets.DatasetDict({k: d.with_transform(fn) for k, d in ds.items()})
            return ds.with_transform(fn)

        return replace(self, **{name: apply(name, getattr(self, name)) for name in self.sizes()})

    @property
    def has_target_labels(self) -> bool:
        """Whether there is a labelled target test set."""
        return self.target_test is not None


def _first(ds: datasets.Dataset, n: int | None, seed: int) -> datasets.Dataset:
    return ds if not n else ds.shuffle(seed=seed).select(range(min(n, len(ds))))


def transfer_splits(
    source: datasets.Dataset | dict[str, datasets.Dataset],
    target: datasets.Dataset,
    validation_fraction: float = 0.2,
    seed: int = 0,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    label_column: str = "label",
    source_val: datasets.Dataset | None = None,
    target_test: datasets.Dataset | None = None,
) -> TransferSplits:
    """Split two labelled domains as DAAT (Du et al., ACL 2020) and UDALM (Karouzos et al., NAACL 2021) do.

    The source is split ``1 - validation_fraction`` / ``validation_fraction`` into train and validation
    (stratified by label) unless ``source_val`` is given; every target row is unlabelled training data (label
    column removed) and, if it has a label, test data, unless ``target_test`` is given.

    Args:
        source, target: domains with a ``ClassLabel`` ``label_column`` (the target's is optional: without it and
            without ``target_test`` there is no target test set); ``source`` may be a dict of
            several source domains, each split alike (``source_train`` becomes a ``DatasetDict``, ``source_val``
            their concatenation, and ``max_train_samples`` / ``max_eval_samples`` hold per source domain).
        source_val: labelled source validation rows (the source is then not split).
        target_test: labelled target test rows (else the labelled target rows, if any).
        validation_fraction: share of source rows held out, in ``(0, 1)``.
        seed: seed of the split and of the subsampling.
        max_train_samples: keep at most this many source-train and target-train rows (quick runs).
        max_eval_samples: keep at most this many source-validation and target-test rows.

    Raises:
        ValueError: if ``validation_fraction`` is outside ``(0, 1)`` or the domains' class names differ.
    """
    if target_test is None and label_column in target.column_names:
        target_test = target
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    sources = dict(source) if isinstance(source, dict) else {"source": source}
    if not sources:
        raise ValueError("no source domain given")
    names = next(iter(sources.values())).features[label_column].names
    for name, ds in [*sources.items(), *([("target", target_test)] if target_test is not None else []),
                     *([("source validation", source_val)] if source_val is not None else [])]:
        if ds.features[label_column].names != names:
            raise ValueError(f"{name!r} classes {ds.features[label_column].names} differ from source classes {names}")
    trains, vals = {}, []
    for name, ds in sources.items():
        if source_val is not None:
            trains[name] = _first(ds, max_train_samples, seed)
            continue
        split = ds.train_test_split(test_size=validation_fraction, seed=seed, stratify_by_column=label_column)
        trains[name] = _first(split["train"], max_train_samples, seed)
        vals.append(_first(split["test"], max_eval_samples, seed))
    if source_val is not None:
        vals = [_first(source_val, max_eval_samples, seed)]
    if label_column in target.column_names:
        target = target.remove_columns(label_column)
    return TransferSplits(
        source_train=trains["source"] if not isinstance(source, dict) else datasets.DatasetDict(trains),
        source_val=vals[0] if len(vals) == 1 else datasets.concatenate_datasets(vals),
        target_train=_first(target, max_train_samples, seed),
        target_test=_first(target_test, max_eval_samples, seed) if target_test is not None else None,
        label_names=list(names),
    )
