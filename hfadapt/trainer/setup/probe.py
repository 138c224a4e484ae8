"""Running the model once on every dataset before training, so that data the model cannot take fails with a
message that names the set, not with a shape error in the middle of a run."""

from __future__ import annotations

import datasets

from ...modeling.inference import dataset_features
from ...modeling.model import AdaptModel
from ..preflight import check_batchable, probe_rows


def probe_feature_dim(adapt_model: AdaptModel, source: datasets.Dataset, collator, model_inputs: list[str]) -> int:
    """Run two source rows through the model; return the width ``F`` of the ``(N, F)`` features the alignment
    heads read.

    Raises:
        ValueError: the model cannot run on the rows (wrong tokenizer, image size or channels), with their
            collated input shapes.
    """
    try:
        features = dataset_features(adapt_model, source, collator, model_inputs, max_rows=2)
    except (RuntimeError, ValueError, TypeError) as err:
        row = {k: v for k, v in source[0].items() if k in model_inputs}
        shapes = {k: tuple(v.shape) for k, v in collator([row]).items() if hasattr(v, "shape")}
        raise ValueError(
            f"the model cannot run on the first source rows (inputs {shapes}): {err}. Check that the data was "
            "processed for this model: tokenised with its tokenizer, or images resized to the model's "
            "image_size with its number of channels (hfadapt.data.image_transform does both)."
        ) from err
    return int(features.shape[-1])


def probe_datasets(adapt_model: AdaptModel, sources: dict[str, datasets.Dataset], target: datasets.Dataset,
                   evals: dict[str, datasets.Dataset], collator, model_inputs: list[str], num_labels: int) -> None:
    """Run rows of the target and eval sets (and the first source's longest) through the model, and a source row
    with a target row through the collator: what the first training step and evaluation will do.

    Raises:
        ValueError: a set's rows the model or the collator cannot take, naming the set
        (:mod:`hfadapt.trainer.preflight`).
    """
    first = next(iter(sources.values()))
    named = {"train_dataset (source)": first, "target_dataset": target,
             **{f"eval dataset {n!r}": ds for n, ds in evals.items()}}
    for name, ds in named.items():
        probe_rows(adapt_model, ds, name, collator, model_inputs, num_labels)
    check_batchable(first, target, collator, model_inputs)
