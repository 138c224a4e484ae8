"""Which trained runs of a grid would the lost-source-task warning flag? Read from the grids' rows
(:func:`hfadapt.evaluation.negative_transfer.source_task_warnings`); nothing is trained.

    python benchmarks/source_task_scan.py benchmarks/results/sentiment_converged*.jsonl

Each method row is compared with the latest source-only row of its pair, seed and budget in the same file. Rows
written before runs recorded ``source_val_rows`` are scored on ``--source_val_rows`` reviews per source domain (the
benchmark's 400-review source validation split). Fused models are left out: the warning reads trained runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NamedTuple

from hfadapt.benchmarking.ledger import load_results
from hfadapt.evaluation.negative_transfer import SOURCE_DROP_Z, source_accuracy_drop_z, source_task_warnings
from hfadapt.methods import SOURCE_ONLY


class Scan(NamedTuple):
    """The scan of one results file.

    Attributes:
        checked: how many method rows had a source-only row of their block to compare with.
        flagged: ``(pair, seed, method, z, warning)`` of each row the warning flags.
        highest_other_z: the largest z among the rows not flagged (``None`` when there are none).
    """

    checked: int
    flagged: list[tuple[str, int, str, float, str]]
    highest_other_z: float | None


def source_rows(row: dict, per_domain: int) -> int:
    """How many source-validation rows ``row`` was scored on: its ``source_val_rows``, else ``per_domain`` per
    source domain of its pair (``"books+dvd:electronics"`` has two)."""
    return row.get("source_val_rows") or per_domain * len(row["pair"].split(":")[0].split("+"))


def scan(rows: list[dict], per_domain: int = 400, z: float = SOURCE_DROP_Z) -> Scan:
    """:class:`Scan` of the method rows of one results file against their block's latest source-only row.

    Raises:
        ValueError: from :func:`source_accuracy_drop_z`, on an accuracy outside ``[0, 1]``.
    """
    def block(row: dict) -> tuple:
        return row["pair"], row["seed"], json.dumps(row.get("budget"), sort_keys=True)

    baselines = {block(r): r for r in rows if r["method"] == SOURCE_ONLY and r.get("source_val_accuracy") is not None}
    checked, flagged, others = 0, [], []
    for row in rows:
        baseline = baselines.get(block(row))
        if row["method"] == SOURCE_ONLY or "fusion" in row or row.get("source_val_accuracy") is None or not baseline:
            continue
        run = {**row, "source_val_rows": source_rows(row, per_domain)}
        checked += 1
        drop = source_accuracy_drop_z(baseline["source_val_accuracy"], row["source_val_accuracy"],
                                      run["source_val_rows"])
        warnings = source_task_warnings([baseline, run], z)
        if warnings:
            flagged.append((row["pair"], row["seed"], row["method"], drop, warnings[0]))
        else:
            others.append(drop)
    return Scan(checked, flagged, max(others, default=None))


def main(argv: list[str] | None = None) -> int:
    """Print, per results file and over all of them, the rows checked, those flagged and the highest z of the rest;
    returns how many rows were flagged."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="benchmark results files (.jsonl)")
    parser.add_argument("--source_val_rows", type=int, default=400,
                        help="source-validation reviews per source domain, for rows that do not record them")
    parser.add_argument("--z", type=float, default=SOURCE_DROP_Z, help="the warning's threshold on the z statistic")
    args = parser.parse_args(argv)
    checked, flagged, highest = 0, 0, []
    for path in args.results:
        result = scan(load_results(Path(path)), args.source_val_rows, args.z)
        checked, flagged = checked + result.checked, flagged + len(result.flagged)
        highest += [result.highest_other_z] if result.highest_other_z is not None else []
        other = "-" if result.highest_other_z is None else f"{result.highest_other_z:.2f}"
        print(f"{path}: {result.checked} method rows, {len(result.flagged)} flagged, highest z of the rest {other}")
        for pair, seed, method, drop, _ in result.flagged:
            print(f"    {pair} seed {seed} {method}: z = {drop:.1f}")
    print(f"all files: {checked} method rows, {flagged} flagged, highest z of the rest "
          f"{max(highest):.2f}" if highest else f"all files: {checked} method rows, {flagged} flagged")
    return flagged


if __name__ == "__main__":
    sys.exit(main() and 0)
