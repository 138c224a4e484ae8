"""The features and logits of a dataset's rows under an :class:`~hfadapt.modeling.model.AdaptModel`, in eval
mode: what the proxy A-distance, the label-free validators, the probe forward and source weighting read."""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import torch


def dataset_features(adapt_model, dataset: datasets.Dataset, collator, model_inputs: Sequence[str],
                     max_rows: int = 256, batch_size: int = 32) -> torch.Tensor:
    """The ``(min(len, max_rows), F)`` alignment features of the first rows of ``dataset``, in eval mode (pass a
    :func:`~hfadapt.data.sampler.row_sample` for a random sample).

    ``adapt_model`` is an :class:`~hfadapt.modeling.model.AdaptModel`; its train/eval mode is restored afterwards.
    """
    return dataset_predictions(adapt_model, dataset, collator, model_inputs, max_rows, batch_size)[0]


@torch.no_grad()
def dataset_predictions(adapt_model, dataset: datasets.Dataset, collator, model_inputs: Sequence[str],
                        max_rows: int = 256, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``(n, F)`` and logits ``(n, C)`` (float32, CPU) of the first ``n = min(len, max_rows)`` rows of
    ``dataset`` in eval mode, reading only the ``model_inputs`` columns (never labels)."""
    columns = list(model_inputs)
    rows = [{k: v for k, v in dataset[i].items() if k in columns} for i in range(min(len(dataset), max_rows))]
    device = next(adapt_model.parameters()).device
    was_training = adapt_model.training
    adapt_model.eval()
    try:
        features, logits = [], []
        for start in range(0, len(rows), batch_size):
            batch = collator([rows[i] for i in range(start, min(start + batch_size, len(rows)))])
            batch = {k: v.to(device) for k, v in batch.items() if k in columns}
            feats, batch_logits = adapt_model.features_and_logits(**batch)
            features.append(feats.float().cpu())
            logits.append(batch_logits.float().cpu())
        return torch.cat(features), torch.cat(logits)
    finally:
        adapt_model.train(was_training)
