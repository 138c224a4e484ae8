"""Tiny models and datasets built in-process, so that the suite never downloads anything: shared by the tests
(through conftest) and by the scripts in tests/scripts, which the tests run with tests/ on ``PYTHONPATH``."""

from __future__ import annotations

import datasets
import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

VOCAB = 64
SEQ = 12


def tiny_bert(seed: int = 0, dropout: float = 0.0, num_labels: int = 2,
              positions: int = 64) -> BertForSequenceClassification:
    """A 2-layer BERT with hidden size 32 reading up to ``positions`` tokens (dropout off by default, so runs are
    deterministic)."""
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=positions,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        num_labels=num_labels,
    )
    return BertForSequenceClassification(config)


def tiny_tokenizer() -> BertTokenizer:
    """A WordPiece tokenizer over the tiny BERT's vocabulary: [PAD]=0, [CLS]=1, [SEP]=2, [MASK]=3, [UNK]=4, w5..w63."""
    vocab = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + [f"w{i}" for i in range(5, VOCAB)]
    return BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})


def token_dataset(n: int, seed: int, shift: int = 0, labels: bool = True, num_labels: int = 2) -> datasets.Dataset:
    """``n`` rows of fixed-length ``input_ids``/``attention_mask`` (+ ``label``); ``shift`` moves the token
    distribution, making a second 'domain'. The label depends on the tokens, so it is learnable."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1 + shift, VOCAB // 2 + shift, (n, SEQ), generator=g)
    ids[:, 0] = 1
    row = {"input_ids": ids.tolist(), "attention_mask": [[1] * SEQ] * n}
    if labels:
        row["label"] = (ids[:, 1] % num_labels).tolist()
    return datasets.Dataset.from_dict(row)
