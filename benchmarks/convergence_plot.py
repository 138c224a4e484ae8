"""Source-validation accuracy during training, per run of a benchmark results file: the curves that show whether
source-only had its best chance (rose, then flattened before early stopping ended it).

    python benchmarks/convergence_plot.py                      # source-only runs of the converged grid
    python benchmarks/convergence_plot.py --methods none self_training --out /tmp/curves.png
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hfadapt.methods import display_name  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def curves(rows: list[dict], methods: list[str]) -> dict[tuple[str, str, int], list[list[float]]]:
    """``{(pair, method, seed): [[step, accuracy], ...]}`` of the rows of ``methods`` that recorded a curve."""
    return {(r["pair"], r["method"], r["seed"]): r["source_val_curve"] for r in rows
            if r["method"] in methods and r.get("source_val_curve")}


def plot(runs: dict, out: Path, title: str) -> None:
    """One panel per method; one line per (pair, seed) of source-validation accuracy (%) against optimizer steps;
    a dot marks the step each run kept (its best)."""
    methods = sorted({method for _, method, _ in runs})
    fig, axes = plt.subplots(1, len(methods), figsize=(6 * len(methods), 4), squeeze=False, sharey=True)
    for ax, method in zip(axes[0], methods, strict=True):
        for (pair, m, seed), curve in sorted(runs.items()):
            if m != method:
                continue
            steps, accs = zip(*curve, strict=True)
            line, = ax.plot(steps, [100 * a for a in accs], label=f"{pair.replace(':', ' -> ')} s{seed}", lw=1)
            best = max(range(len(accs)), key=accs.__getitem__)
            ax.plot(steps[best], 100 * accs[best], "o", color=line.get_color())
        ax.set_title(display_name(method))
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("source-validation accuracy (%)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(RESULTS / "sentiment_converged.jsonl"))
    parser.add_argument("--methods", nargs="+", default=["none"])
    parser.add_argument("--out", default=str(RESULTS / "sentiment_converged_curves.png"))
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in Path(args.results).read_text().splitlines() if line.strip()]
    runs = curves(rows, args.methods)
    if not runs:
        raise SystemExit(f"no run of {args.methods} with a source-validation curve in {args.results}")
    budget = next(r["budget"] for r in rows if "budget" in r)
    title = f"{Path(args.results).name}: " + ", ".join(f"{k} {v}" for k, v in budget.items() if v is not None)
    plot(runs, Path(args.out), textwrap.fill(title, 160))
    print(f"written: {args.out} ({len(runs)} runs)")


if __name__ == "__main__":
    main()
