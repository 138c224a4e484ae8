"""Reading a finished grid's kept models again (``sentiment_benchmark.py --members_dir``), as the grid read them:
the command-line arguments and setup shared by the scripts that score kept models without training.

The grid's splits, precision and backbone must be given again (``--max_length``, ``--max_eval_samples``,
``--mixed_precision``, ``--model_name_or_path``); with the grid's values a model scored here gives the grid row's
figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from typing import NamedTuple

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from ..cli.recipes import recipe_path
from ..data import DataArguments
from ..trainer.config import AdaptConfig
from ..utils.offline_models import packaged_minilm_path
from ..utils.precision import MIXED_PRECISIONS
from .pairs import DEFAULT_PAIRS, read_recipe
from .store import MemberStore


def add_member_arguments(parser: argparse.ArgumentParser, methods_help: str) -> None:
    """Add to ``parser`` where the kept models are, which blocks and models to read (``--methods``, described by
    ``methods_help``), the grid's splits, precision, backbone and recipe, and where rows go (``--results``)."""
    parser.add_argument("--members_dir", required=True, help="the grid's --members_dir")
    parser.add_argument("--pairs", nargs="+", default=DEFAULT_PAIRS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--methods", nargs="+", required=True, help=methods_help)
    parser.add_argument("--max_length", type=int, default=128, help="tokens per review, as the grid read them")
    parser.add_argument("--max_train_samples", type=int, default=None, help="as the grid's (default: every row)")
    parser.add_argument("--max_eval_samples", type=int, default=1000, help="as the grid's (its default 1000)")
    parser.add_argument("--model_name_or_path", default=None, help="the grid's backbone (default: packaged MiniLM)")
    parser.add_argument("--mixed_precision", default=None, choices=MIXED_PRECISIONS)
    parser.add_argument("--recipe", default=str(recipe_path("text")))
    parser.add_argument("--results", required=True, help="rows are appended here; a rerun skips the rows it finds")


class MemberReading(NamedTuple):
    """What scoring a grid's kept models needs: the recipe's data (with the grid's splits) and configuration, the
    backbone's path and tokenizer, and the store of kept weights."""

    data: DataArguments
    config: AdaptConfig
    model_path: str
    tokenizer: PreTrainedTokenizerBase
    store: MemberStore


def member_reading(args: argparse.Namespace, scratch_prefix: str) -> MemberReading:
    """The :class:`MemberReading` of arguments added by :func:`add_member_arguments`; the recipe's runs would
    write under a fresh temporary folder named with ``scratch_prefix``.

    Raises:
        FileNotFoundError, ValueError: a missing or malformed recipe (:func:`~.pairs.read_recipe`).
        OSError: the backbone's tokenizer cannot be read.
    """
    data, config = read_recipe(args, tempfile.mkdtemp(prefix=scratch_prefix))
    data = dataclasses.replace(data, max_length=args.max_length, max_train_samples=args.max_train_samples,
                               max_eval_samples=args.max_eval_samples)  # the grid's splits
    model_path = args.model_name_or_path or packaged_minilm_path()
    return MemberReading(data, config, model_path, AutoTokenizer.from_pretrained(model_path),
                         MemberStore(args.members_dir))


def kept_member(reading: MemberReading, pair: str, spec: str, seed: int) -> dict | None:
    """The run key of the model the store keeps for ``pair`` and ``seed`` trained as ``spec``
    (:meth:`~.store.MemberStore.kept_as`), or None if it keeps none; load it with
    ``reading.store.load(pair, seed, key)``.

    Raises:
        ValueError: several such models are kept, or the kept one was trained on other data or another backbone
            than ``reading`` reads (give the grid's ``--max_length``, ``--max_train_samples``,
            ``--max_eval_samples`` and ``--model_name_or_path``): its scores would not be the grid row's.
    """
    key = reading.store.kept_as(pair, spec, seed)
    if key is None:
        return None
    data = json.loads(json.dumps(dataclasses.asdict(reading.data), default=str))
    other = sorted(k for k in data.keys() | key["data"].keys() if data.get(k) != key["data"].get(k))
    if key["model"] != str(reading.model_path):
        other.append(f"backbone ({key['model']})")
    if other:
        raise ValueError(f"{spec} on {pair} seed {seed} was kept from a grid that read other data or another "
                         f"backbone: {', '.join(other)} differ; give this command the grid's values")
    return key
