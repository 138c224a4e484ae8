"""Tokenising text columns, single texts or sentence pairs, the way ``run_classification.py`` does."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .splits import TransferSplits


def tokenizer_function(tokenizer, text_columns: Sequence[str], max_length: int,
                       padding: bool | str = False) -> Callable[[dict], dict]:
    """A batched ``Dataset.map`` function: ``tokenizer(batch[a], truncation=True, max_length=max_length)``, or
    ``tokenizer(batch[a], batch[b], ...)`` for a sentence pair. A missing text (``None``) becomes ``""``.
    ``padding``: the tokenizer's (``False``: none, the collator pads each batch; ``"max_length"``: every row).

    Raises:
        ValueError: for other than one or two text columns.
    """
    columns = list(text_columns)
    if not 1 <= len(columns) <= 2:
        raise ValueError(f"one text column or two (a sentence pair), got {columns}")

    def tokenize(batch: dict) -> dict:
        texts = [["" if t is None else str(t) for t in batch[c]] for c in columns]
        return tokenizer(*texts, truncation=True, max_length=max_length, padding=padding)

    return tokenize


def check_max_length(max_length: int, tokenizer, model_config) -> None:
    """Refuse a ``max_length`` (tokens per row) above what a model with absolute position embeddings reads: the
    tokenizer's ``model_max_length`` where it sets one, and the config's ``max_position_embeddings`` where it has
    one; a longer row would fail in the position embeddings at the first step, with a tensor-size error that does
    not name ``max_length``. Models with relative positions only (DeBERTa's ``position_biased_input=False``, a
    ``relative_key`` ``position_embedding_type``) are not limited here.

    Raises:
        ValueError: naming both numbers and the ``--max_length`` to give.
    """
    if getattr(model_config, "position_biased_input", True) is False \
            or getattr(model_config, "position_embedding_type", None) not in (None, "absolute"):
        return
    limits = [n for n in (getattr(tokenizer, "model_max_length", None),
                          getattr(model_config, "max_position_embeddings", None))
              if isinstance(n, int) and 0 < n < 10**6]  # transformers marks "no limit" with a huge number
    if limits and max_length > min(limits):
        raise ValueError(f"max_length {max_length} is more tokens than the model reads ({min(limits)} positions): "
                         f"give --max_length {min(limits)} or less")


def tokenize_splits(splits: TransferSplits, tokenizer, text_columns: Sequence[str], max_length: int,
                    padding: bool | str = False) -> TransferSplits:
    """Every dataset of ``splits`` tokenised (:func:`tokenizer_function`, ``padding`` as there); the original columns
    are kept, and the trainer keeps only the model's inputs and labels.

    Raises:
        ValueError: for other than one or two text columns.
    """
    return splits.map(tokenizer_function(tokenizer, text_columns, max_length, padding), batched=True,
                      desc="tokenising")
