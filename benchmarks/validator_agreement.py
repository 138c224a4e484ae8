"""Does a grid's label-free validator rank its models as target accuracy does? Read from a finished grid's rows
(:mod:`hfadapt.benchmarking.agreement`); nothing is trained.

    python benchmarks/validator_agreement.py --results benchmarks/results/sentiment_converged_cpu_bf16.jsonl \
        --methods none self_training adamatch
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hfadapt.benchmarking.agreement import agreement_table, validator_agreement
from hfadapt.benchmarking.ledger import load_results


def main(argv: list[str] | None = None) -> str:
    """Print (and return) the agreement table of ``--results`` over the blocks holding every one of ``--methods``
    (optionally only ``--pairs``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, help="a benchmark results file (.jsonl)")
    parser.add_argument("--methods", nargs="+", required=True,
                        help="the models each block must hold, source-only ('none') among them; fusions by their "
                             "spec, e.g. uniform_soup:self_training/adamatch")
    parser.add_argument("--pairs", nargs="*", default=None, help="only these pairs (default: every pair)")
    args = parser.parse_args(argv)
    rows = load_results(Path(args.results))
    if args.pairs is not None:
        rows = [r for r in rows if r["pair"] in args.pairs]
    table = agreement_table(validator_agreement(rows, args.methods))
    print(table)
    return table


if __name__ == "__main__":
    sys.exit(main() and 0)
