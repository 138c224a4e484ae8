"""Child process of ``throughput.py``: seconds to tokenise the transfer splits, in a fresh process.

    python benchmarks/_tokenise_child.py DATA_JSON MODEL SEED

``DATA_JSON``: the :class:`~hfadapt.data.DataArguments` fields as a JSON object. Loads and splits the data
(:func:`~hfadapt.data.load_transfer_splits`), then times :func:`~hfadapt.data.tokenize_splits` alone and prints
the seconds; run twice with one ``HF_DATASETS_CACHE``, the second run reads what the first cached.
"""

from __future__ import annotations

import argparse
import json
import time

from transformers import AutoTokenizer

from hfadapt.data import DataArguments, load_transfer_splits, tokenize_splits


def main(argv: list[str] | None = None) -> None:
    """Load the splits of the data in ``argv``, then print the seconds their tokenisation takes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=json.loads)
    parser.add_argument("model")
    parser.add_argument("seed", type=int)
    args = parser.parse_args(argv)
    data = DataArguments(**args.data)
    splits = load_transfer_splits(data, seed=args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    start = time.perf_counter()
    tokenize_splits(splits, tokenizer, data.text_columns, data.max_length)
    print(time.perf_counter() - start)


if __name__ == "__main__":
    main()
