"""Write a copy of a domain-column table with label-shifted domains added: each named domain subsampled so that one
class makes a given share of its rows, as a domain of its own (``electronics-pos20``: electronics, 20% positive).

The demo domains are balanced, so a grid on them cannot show how a method fares where the target's class
distribution is not the source's. Pairs such as ``books:electronics-pos20`` of the written table (a ``save_to_disk``
folder, passed to ``sentiment_benchmark.py --dataset_name``) can. Each copy holds as many rows as the class that
bounds its size allows, drawn with ``--seed``; the original domains stay in the table unchanged.

    python benchmarks/label_shift_data.py --domains electronics --shares 0.2 0.8 --output_dir /tmp/msd-label-shift
"""

from __future__ import annotations

import argparse
import sys

import datasets
import numpy as np

from hfadapt.benchmarking.label_shift import label_shift_sizes
from hfadapt.data.loading import load_table


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line: which table, domains and shares, where the copy goes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset_name", default="demo:amazon-msd", help="a table with a domain column")
    parser.add_argument("--domain_column_name", default="domain")
    parser.add_argument("--label_column_name", default="label")
    parser.add_argument("--positive_label", type=int, default=1, help="the class whose share is set")
    parser.add_argument("--domains", nargs="+", required=True, help="domains to add label-shifted copies of")
    parser.add_argument("--shares", nargs="+", type=float, required=True, help="shares of --positive_label, in (0, 1)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the draw of the rows kept")
    parser.add_argument("--output_dir", required=True, help="where the table is saved (save_to_disk)")
    args = parser.parse_args(argv)
    if not all(0 < s < 1 for s in args.shares):
        parser.error(f"--shares must lie in (0, 1), got {args.shares}")
    return args


def shifted_domain_name(domain: str, share: float) -> str:
    """The name of ``domain`` subsampled to ``share`` positives: ``"electronics-pos20"`` for 0.2."""
    return f"{domain}-pos{round(100 * share)}"


def label_shifted(rows: datasets.Dataset, label_column: str, positive: int, share: float,
                  seed: int) -> datasets.Dataset:
    """The rows of one domain subsampled so that ``positive`` labels make ``share`` of them (to the nearest row), as
    many as the rarer class at that share allows, drawn without replacement with ``seed``, in their original order.

    Raises:
        ValueError: a domain with no row of ``positive`` or no row of another label.
    """
    labels = np.asarray(rows[label_column])
    pos, neg = np.flatnonzero(labels == positive), np.flatnonzero(labels != positive)
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"the domain needs rows of label {positive} and of another label to set their shares; it "
                         f"has {len(pos)} and {len(neg)}")
    n_pos, n_neg = label_shift_sizes(len(pos), len(neg), share)
    rng = np.random.default_rng(seed)
    keep = np.concatenate([rng.choice(pos, n_pos, replace=False), rng.choice(neg, n_neg, replace=False)])
    return rows.select(np.sort(keep))


def main(argv: list[str] | None = None) -> None:
    """Save the table with the label-shifted domains added, and print each added domain's size and share."""
    args = parse(argv)
    table = load_table(args.dataset_name)
    column = args.domain_column_name
    added = []
    for domain in args.domains:
        rows = table.filter(lambda r: r[column] == domain)  # noqa: B023 - used at once
        if len(rows) == 0:
            raise SystemExit(f"no rows of domain {domain!r} in {args.dataset_name} (column {column!r})")
        for share in args.shares:
            name = shifted_domain_name(domain, share)
            part = label_shifted(rows, args.label_column_name, args.positive_label, share, args.seed)
            part = part.map(lambda r: {column: name}, desc=name)  # noqa: B023 - used at once
            positives = sum(1 for v in part[args.label_column_name] if v == args.positive_label)
            print(f"{name}: {len(part)} rows, {100 * positives / len(part):.1f}% label {args.positive_label}")
            added.append(part)
    datasets.concatenate_datasets([table, *added]).save_to_disk(args.output_dir)


if __name__ == "__main__":
    sys.exit(main())
