"""Fixtures of tiny models and datasets built in-process (tiny_models): the suite never downloads anything."""

from __future__ import annotations

import pytest

# re-exported: the tests import the builders from conftest
from tiny_models import SEQ, VOCAB, tiny_bert, tiny_tokenizer, token_dataset  # noqa: F401


@pytest.fixture
def domains():
    """(source train, target train, target test) datasets of token ids."""
    return (token_dataset(32, seed=1), token_dataset(32, seed=2, shift=8, labels=False),
            token_dataset(16, seed=3, shift=8))
