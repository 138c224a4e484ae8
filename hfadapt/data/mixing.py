"""Checking the source and target datasets and mixing them into one training set with a ``domain`` column.

Everything here runs before training starts, so bad input fails in seconds, not after hours.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence

import datasets

from ..modeling.heads import unwrap_peft
from .transforms import DomainTransform, raw, row_keys, transform_of

LABEL_COLUMNS = ("labels", "label", "label_ids")
DOMAIN_COLUMN = "domain"


def model_input_names(model) -> list[str]:
    """The input names of a (PEFT-wrapped or plain) transformers model's ``forward``, labels excluded: the dataset
    columns it reads."""
    parameters = inspect.signature(unwrap_peft(model).forward).parameters.values()
    return [p.name for p in parameters if p.name not in LABEL_COLUMNS and p.kind != p.VAR_KEYWORD]


def _label_column(ds: datasets.Dataset) -> str | None:
    return next((c for c in LABEL_COLUMNS if c in ds.column_names), None)


def _label_names(ds: datasets.Dataset, column: str) -> list[str] | None:
    feature = ds.features.get(column)
    return list(feature.names) if isinstance(feature, datasets.ClassLabel) else None


def label_ids(parts: Iterable[datasets.Dataset]) -> list[int]:
    """Every row's label id in ``parts`` (e.g. the source domains), in order, from each part's label column
    (``labels``, ``label`` or ``label_ids``); ``-100`` rows (unlabelled) included.

    Raises:
        ValueError: a part without a label column.
    """
    ids: list[int] = []
    for part in parts:
        column = _label_column(part)
        if column is None:
            raise ValueError(f"a labelled set has no label column (one of {LABEL_COLUMNS}); its columns are "
                             f"{part.column_names}")
        ids += [int(v) for v in part[column]]
    return ids


def label_values(ds: datasets.Dataset, column: str) -> set[int]:
    """The set of label ids in ``ds[column]``, ``-100`` (unlabelled) excluded."""
    return {int(v) for v in ds.unique(column)} - {-100}


def check_columns(ds: datasets.Dataset, name: str, model_inputs: Iterable[str], need_labels: bool) -> None:
    """Raise ``ValueError`` if ``ds`` is empty, has no model input column, or (when ``need_labels``) no label.

    Args:
        ds: a tokenised / processed ``datasets.Dataset``.
        name: how to call it in the message (e.g. ``"train_dataset (source)"``).
        model_inputs: the argument names of the model's ``forward`` (e.g. ``input_ids``, ``pixel_values``).
        need_labels: whether a label column is required.
    """
    if not isinstance(ds, datasets.Dataset):
        raise TypeError(f"{name} must be a datasets.Dataset, got {type(ds).__name__}")
    if len(ds) == 0:
        raise ValueError(f"{name} is empty: domain adaptation needs rows from every domain")
    keys = row_keys(ds)
    inputs = [c for c in model_inputs if c in keys]
    if not inputs:
        raise ValueError(
            f"{name} has no model input column (its rows have {keys}; the model takes {sorted(model_inputs)}). "
            "Tokenise text first, e.g. ds.map(lambda b: tokenizer(b['text'], truncation=True), batched=True); "
            "for images, set the image processor as a lazy transform: "
            "ds.with_transform(hfadapt.data.image_transform(processor))."
        )
    if need_labels and _label_column(ds) is None:
        raise ValueError(f"{name} has no label column: expected one of {LABEL_COLUMNS}, got columns {ds.column_names}")


def check_task_columns(ds: datasets.Dataset, name: str, tasks: Mapping[str, int]) -> None:
    """For a multi-task model: raise ``ValueError`` unless ``ds`` has a column per extra task (named after it)
    whose labels are in ``[0, num_labels)`` (or -100 for a row without that label)."""
    for task, num_labels in tasks.items():
        if task not in ds.column_names:
            raise ValueError(f"the multi-task model has task {task!r} but {name} has no {task!r} column "
                             f"(columns: {ds.column_names}); every task but the first reads the column named after it")
        bad = sorted(v for v in label_values(ds, task) if not 0 <= v < num_labels)
        if bad:
            raise ValueError(f"{name}: labels {bad} of task {task!r} are outside [0, {num_labels}) (use -100 for none)")


def check_label_sets(source: datasets.Dataset, num_labels: int, eval_datasets: Mapping[str, datasets.Dataset]) -> None:
    """Check that source labels fit the model and that every labelled eval set uses the source's label set.

    Raises:
        ValueError: if a source label is outside ``[0, num_labels)``, if an eval set has a label the source
            training set lacks, or if two datasets give different class names (``ClassLabel``) for the same ids.
    """
    column = _label_column(source)
    values = label_values(source, column)
    bad = sorted(v for v in values if not 0 <= v < num_labels)
    if bad:
        raise ValueError(
            f"source labels {bad} are outside [0, {num_labels}): the model has num_labels={num_labels}. "
            "Load it with num_labels equal to the number of classes."
        )
    if not values:
        raise ValueError("train_dataset (source) has no labelled row (every label is -100)")
    names = _label_names(source, column)
    for eval_name, ds in eval_datasets.items():
        eval_column = _label_column(ds)
        if eval_column is None:
            continue
        extra = sorted(label_values(ds, eval_column) - values)
        if extra:
            raise ValueError(
                f"eval dataset {eval_name!r} has labels {extra} that the source training set lacks "
                f"(source labels: {sorted(values)}); the label sets of the domains must match"
            )
        eval_names = _label_names(ds, eval_column)
        if names is not None and eval_names is not None and names != eval_names:
            raise ValueError(
                f"eval dataset {eval_name!r} names its classes {eval_names} but the source names them {names}; "
                "map both to the same ClassLabel before training"
            )


def build_training_set(
    source: datasets.Dataset | Sequence[datasets.Dataset],
    target: datasets.Dataset,
    model_inputs: Iterable[str],
    target_domain: int | None = None,
    extra_label_columns: Sequence[str] = (),
) -> datasets.Dataset:
    """Concatenate labelled source rows (one or several source domains) and unlabelled target rows, with
    ``labels`` and ``domain`` columns.

    The target's label column, if any, is dropped *before* mixing: target rows get ``labels = -100``, so no
    loss can see a target label.

    Args:
        source: labelled source rows (model inputs + a label column), or a sequence of such sets, one per source
            domain; source domain ``k`` gets domain id ``k``.
        target: target rows (model inputs; a label column is ignored).
        model_inputs: forward argument names to keep (``input_ids``, ``attention_mask``, ...).
        target_domain: domain id given to target rows; default (and the only value hfadapt uses) the number of
            source domains.
        extra_label_columns: label columns of further tasks (multi-task models) kept from the sources; target
            rows get -100 in them too.

    Returns:
        A ``datasets.Dataset`` with the model inputs all sets share, ``labels`` (int64) and ``domain`` (int64),
        source rows first. If the sets make their model inputs lazily (``with_transform``, e.g. images through an
        image processor), the mixed set stores their shared raw columns (``image``) and carries a
        :class:`~hfadapt.data.transforms.DomainTransform` that runs each row's own domain transform when read.

    Raises:
        ValueError: if the sets share no model input column.
    """
    sources = [source] if isinstance(source, datasets.Dataset) else list(source)
    target_domain = len(sources) if target_domain is None else target_domain
    all_sets = (*sources, target)
    keys = [set(row_keys(ds)) for ds in all_sets]
    inputs = [c for c in model_inputs if all(c in k for k in keys) and c not in (*LABEL_COLUMNS, *extra_label_columns)]
    if not inputs:
        raise ValueError(
            f"the source and target sets share no model input column (their rows have {[sorted(k) for k in keys]})"
        )
    transforms = [transform_of(ds) for ds in all_sets]
    lazy = any(fn is not None for fn in transforms)
    if lazy:  # mix the stored columns; the model inputs are made when rows are read
        skip = {*LABEL_COLUMNS, *extra_label_columns, DOMAIN_COLUMN}
        shared = [c for c in raw(sources[0]).column_names if c not in skip
                  and all(c in raw(ds).column_names for ds in all_sets)]
        stored = shared
    else:
        stored = inputs
    int64 = datasets.Value("int64")
    parts = []
    for domain_id, ds in enumerate(sources):
        label_column = _label_column(ds)
        src = raw(ds).select_columns([*stored, label_column, *extra_label_columns])
        if label_column != "labels":
            src = src.rename_column(label_column, "labels")
        for column in ("labels", *extra_label_columns):
            src = src.cast_column(column, int64)
        src = src.add_column(DOMAIN_COLUMN, [domain_id] * len(src), feature=int64)
        parts.append(src if not parts else src.cast(parts[0].features))
    tgt = raw(target).select_columns(stored)
    for column in ("labels", *extra_label_columns):
        tgt = tgt.add_column(column, [-100] * len(tgt), feature=int64)
    tgt = tgt.add_column(DOMAIN_COLUMN, [target_domain] * len(tgt), feature=int64)
    parts.append(tgt.cast(parts[0].features))
    mixed = datasets.concatenate_datasets(parts)
    if lazy:
        domain_transforms = [None] * (target_domain + 1)
        for domain_id, fn in enumerate(transforms[:-1]):
            domain_transforms[domain_id] = fn
        domain_transforms[target_domain] = transforms[-1]
        mixed.set_transform(DomainTransform(domain_transforms, keep=inputs,
                                            passthrough=["labels", *extra_label_columns, DOMAIN_COLUMN]))
    return mixed
