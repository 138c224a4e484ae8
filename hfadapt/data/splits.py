"""The evaluation protocol of cross-domain classification, as one reusable split of two labelled domains."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import datasets


@dataclass
class TransferSplits:
    """The four datasets of one source -> target transfer.

    Attributes:
        source_train: labelled source rows for training.
        source_val: held-out labelled source rows (source validation accuracy).
        target_train: target rows *without* their label column: the unlabelled training data.
        target_test: labelled target rows, for the final test only.
        label_names: class names shared by both domains.
    """

    source_train: datasets.Dataset
    source_val: datasets.Dataset
    target_train: datasets.Dataset
    target_test: datasets.Dataset
    label_names: list[str]

    def sizes(self) -> dict[str, int]:
        """Row counts of the four datasets by field name."""
        return {f.name: len(getattr(self, f.name)) for f in fields(self) if f.name != "label_names"}

    def map(self, function, desc: str = "processing", **kwargs) -> TransferSplits:
        """Apply ``datasets.Dataset.map(function, **kwargs)`` to all four datasets (e.g. tokenisation)."""
        return replace(
            self,
            **{name: getattr(self, name).map(function, desc=f"{desc} {name}", **kwargs) for name in self.sizes()},
        )


def _first(ds: datasets.Dataset, n: int | None, seed: int) -> datasets.Dataset:
    return ds if not n else ds.shuffle(seed=seed).select(range(min(n, len(ds))))


def transfer_splits(
    source: datasets.Dataset,
    target: datasets.Dataset,
    validation_fraction: float = 0.2,
    seed: int = 0,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    label_column: str = "label",
) -> TransferSplits:
    """Split two labelled domains as DAAT (Du et al., ACL 2020) and UDALM (Karouzos et al., NAACL 2021) do.

    The source is split ``1 - validation_fraction`` / ``validation_fraction`` into train and validation
    (stratified by label); every target row is unlabelled training data (label column removed) and, with its
    label, test data.

    Args:
        source, target: labelled domains with a ``ClassLabel`` ``label_column``.
        validation_fraction: share of source rows held out, in ``(0, 1)``.
        seed: seed of the split and of the subsampling.
        max_train_samples: keep at most this many source-train and target-train rows (quick runs).
        max_eval_samples: keep at most this many source-validation and target-test rows.

    Raises:
        ValueError: if ``validation_fraction`` is outside ``(0, 1)`` or the domains' class names differ.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    names = source.features[label_column].names
    if target.features[label_column].names != names:
        raise ValueError(f"source classes {names} differ from target classes {target.features[label_column].names}")
    split = source.train_test_split(test_size=validation_fraction, seed=seed, stratify_by_column=label_column)
    return TransferSplits(
        source_train=_first(split["train"], max_train_samples, seed),
        source_val=_first(split["test"], max_eval_samples, seed),
        target_train=_first(target.remove_columns(label_column), max_train_samples, seed),
        target_test=_first(target, max_eval_samples, seed),
        label_names=list(names),
    )
