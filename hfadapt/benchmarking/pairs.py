"""The transfer pairs of the benchmarks and their data, read the way the examples and ``hfadapt train`` read it.

A pair is ``"source:target"``, domains of one table with a domain column (``"books:dvd"``), or several sources
joined by ``+`` (``"books+dvd:electronics"``). The table and its columns come from the recipe's
:class:`~hfadapt.data.DataArguments` (by default the demo reviews shipped in ``hfadapt/demo_data``).
"""

from __future__ import annotations

import dataclasses
import itertools

from ..cli.args import parse_with_config
from ..data import DataArguments, TransferSplits, load_transfer_splits, tokenize_splits
from ..trainer.config import AdaptConfig

DOMAINS = ("books", "dvd", "electronics")
"""The domains of the demo reviews the benchmarks pair."""
DEFAULT_PAIRS = [f"{s}:{t}" for s, t in itertools.permutations(DOMAINS, 2)]
"""The six single-source pairs."""
MULTI_SOURCE_PAIRS = [f"{'+'.join(d for d in DOMAINS if d != t)}:{t}" for t in DOMAINS]
"""Two domains -> the third, for each target."""


def pair_data(data: DataArguments, pair: str) -> DataArguments:
    """``data`` with the source and target domains of ``pair``.

    Raises:
        ValueError: if ``pair`` has no ``:``, or ``data`` has no domain column to select the domains by.
    """
    source, sep, target = pair.partition(":")
    if not sep or data.domain_column_name is None:
        raise ValueError(f"pair {pair!r} needs the form 'source:target' and data with a domain column "
                         f"(domain_column_name is {data.domain_column_name!r})")
    return dataclasses.replace(data, source=source, target=target)


def tokenised_pair(data: DataArguments, pair: str, seed: int, tokenizer) -> TransferSplits:
    """The :class:`~hfadapt.data.TransferSplits` of ``pair`` (:func:`pair_data`), split with ``seed`` and tokenised
    to ``data.max_length`` tokens (:func:`~hfadapt.data.load_transfer_splits`,
    :func:`~hfadapt.data.tokenize_splits`).

    Raises:
        ValueError, FileNotFoundError: for a bad pair or data, as :func:`~hfadapt.data.load_transfer_splits` does.
    """
    data = pair_data(data, pair)
    return tokenize_splits(load_transfer_splits(data, seed=seed), tokenizer, data.text_columns, data.max_length)


def read_recipe(args, output_dir: str) -> tuple[DataArguments, AdaptConfig]:
    """The recipe's data and configuration (``args.recipe``, a YAML file), with ``args.mixed_precision`` over the
    recipe's when set (``None``: the recipe's); runs write under ``output_dir``.

    Raises:
        FileNotFoundError, ValueError: a missing or malformed recipe (:func:`~hfadapt.cli.args.parse_with_config`).
    """
    precision = ["--mixed_precision", args.mixed_precision] if args.mixed_precision else []
    return parse_with_config((DataArguments, AdaptConfig), ["--output_dir", output_dir, "--disable_tqdm", "true",
                                                            "--logging_steps", "1000", *precision],
                             default_config=args.recipe)
