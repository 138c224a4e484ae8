"""Target prior matching under label shift: how a kept model's target accuracy changes with matching when the target
domain's class distribution is not the source's; nothing is trained.

Target prior matching (``--target_prior_matching``, :mod:`hfadapt.modeling.prior_matching`) assumes the target has
the source labels' class distribution. The demo domains are balanced, so a grid on them cannot show what the
assumption costs. Here each kept model of a grid (``sentiment_benchmark.py --members_dir``) scores the target test
rows once; for each positive share ``s`` the rows are subsampled (as many as the class that bounds the size allows,
drawn without replacement, ``--draws`` times) and the model is scored four ways on each draw: as
trained; matched to the source labels' prior (what ``--target_prior_matching`` does; the shift is found on the
draw's own rows, standing in for unlabelled target rows with the same class distribution); matched to the prior EM
estimates from the draw's predictions (Saerens et al., 2002); and matched to the draw's true class distribution
(what a user who knows the target's prior gets by passing it). Binary tasks only.

    python benchmarks/prior_matching_label_shift.py --members_dir <grid members> --seeds 1 2 \
        --methods adamatch self_training --logits_dir <logits folder> \
        --results benchmarks/results/prior_matching_label_shift.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from pathlib import Path

import torch
from transformers import DataCollatorWithPadding

from hfadapt.benchmarking.fusion import model_factory
from hfadapt.benchmarking.label_shift import label_shift_sizes
from hfadapt.benchmarking.ledger import append_row, environment, load_results
from hfadapt.benchmarking.members import add_member_arguments, kept_member, member_reading
from hfadapt.benchmarking.pairs import tokenised_pair
from hfadapt.benchmarking.prior_matching import loaded, source_labels
from hfadapt.data.mixing import model_input_names
from hfadapt.modeling.features import HeadInputReader
from hfadapt.modeling.inference import dataset_predictions
from hfadapt.modeling.prior_matching import class_prior, prior_matching_shift
from hfadapt.utils.runtime import use_available_cpu_threads

WAYS = ("as_trained", "source_prior", "estimated_prior", "true_prior")
"""The ways each draw is scored: no matching, matching to the source's prior, to the prior estimated by EM, to the
draw's own."""


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line: where the members are, which blocks, models and shares, where rows go."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_member_arguments(parser, methods_help="kept members to score")
    parser.add_argument("--shares", nargs="+", type=float, default=[0.2, 0.35, 0.5, 0.65, 0.8],
                        help="share of the second class (positive) among the subsampled target rows, in (0, 1)")
    parser.add_argument("--draws", type=int, default=20, help="subsamples per share")
    parser.add_argument("--logits_dir", default=None,
                        help="keep each model's target logits here, and read them back instead of scoring again")
    parser.add_argument("--table_only", action="store_true", help="print the table of --results and stop")
    args = parser.parse_args(argv)
    if not all(0 < s < 1 for s in args.shares):
        parser.error(f"--shares must lie in (0, 1), got {args.shares}")
    return args


def draw(labels: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """Indices of a subsample of ``labels`` ``(N,)`` (ids 0 and 1) whose share of 1s is ``share`` (to the nearest
    row): as many rows as the class that bounds the size allows, drawn without replacement.

    Raises:
        ValueError: labels other than 0 and 1, or a class with no row.
    """
    if not set(labels.unique().tolist()) == {0, 1}:
        raise ValueError(f"a binary task with both classes present is needed, got label ids {labels.unique().tolist()}")
    pos, neg = torch.nonzero(labels == 1).flatten(), torch.nonzero(labels == 0).flatten()
    n_pos, n_neg = label_shift_sizes(len(pos), len(neg), share)
    pick = [pos[torch.randperm(len(pos), generator=generator)[:n_pos]],
            neg[torch.randperm(len(neg), generator=generator)[:n_neg]]]
    return torch.cat(pick)


def em_prior(logits: torch.Tensor, source_prior: torch.Tensor, max_iter: int = 1000, tol: float = 1e-8) -> torch.Tensor:
    """The target class distribution ``(C,)`` estimated from ``logits`` ``(N, C)`` of a model trained under
    ``source_prior`` by EM (Saerens, Latinne & Decaestecker, Neural Computation, 2002): reweight the posteriors by the
    ratio of the current estimate to the source prior, renormalise, and take their mean as the next estimate."""
    posteriors = logits.double().softmax(-1)
    prior = source_prior.double()
    estimate = prior.clone()
    for _ in range(max_iter):
        weighted = posteriors * (estimate / prior)
        new = (weighted / weighted.sum(-1, keepdim=True)).mean(0)
        if (new - estimate).abs().max() <= tol:
            return new
        estimate = new
    return estimate


def scores(logits: torch.Tensor, labels: torch.Tensor, source_prior: torch.Tensor, shares: list[float],
           draws: int, seed: int) -> list[dict]:
    """For each share, the mean target accuracy (%) over ``draws`` subsamples of each of :data:`WAYS`, and the mean
    positive share predicted as trained; ``logits`` ``(N, 2)``, ``labels`` ``(N,)``."""
    out = []
    for share in shares:
        generator = torch.Generator().manual_seed(seed)
        acc = {w: [] for w in WAYS}
        predicted = []
        for _ in range(draws):
            idx = draw(labels, share, generator)
            z, y = logits[idx], labels[idx]
            true_prior = torch.bincount(y, minlength=2).double() / len(y)
            shifted = {"as_trained": z, "source_prior": z + prior_matching_shift(z, source_prior),
                       "estimated_prior": z + prior_matching_shift(z, em_prior(z, source_prior)),
                       "true_prior": z + prior_matching_shift(z, true_prior)}
            for way, s in shifted.items():
                acc[way].append(100 * float((s.argmax(-1) == y).float().mean()))
            predicted.append(float((z.argmax(-1) == 1).float().mean()))
        out.append({"share": share, "rows": len(idx), "predicted_share": statistics.fmean(predicted),
                    **{w: statistics.fmean(a) for w, a in acc.items()}})
    return out


def target_logits(model, splits, tokenizer, bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(N, C)`` logits (float32) of ``model`` on every target test row, in the grid's precision, and the
    ``(N,)`` label ids."""
    rows = splits.target_test
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with autocast:
        logits = dataset_predictions(HeadInputReader(model.eval()), rows, DataCollatorWithPadding(tokenizer),
                                     model_input_names(model), len(rows))[1]
    return logits, torch.as_tensor(rows["label"])


def table(rows: list[dict]) -> str:
    """A Markdown table: per method and share, accuracy as trained, and the mean change (± s.e. over the blocks)
    with each matching."""
    lines = ["| model | positive share | blocks | as trained | source-prior matching | EM-prior matching "
             "| true-prior matching |", "|---|---:|---:|---:|---:|---:|---:|"]
    for method in sorted({r["method"] for r in rows}):
        mine = [r for r in rows if r["method"] == method]
        for i, share in enumerate(s["share"] for s in mine[0]["shares"]):
            cells = [r["shares"][i] for r in mine]
            base = [c["as_trained"] for c in cells]
            line = f"| {method} | {share:.2f} | {len(cells)} | {statistics.fmean(base):.2f} |"
            for way in WAYS[1:]:
                diff = [c[way] - b for c, b in zip(cells, base, strict=True)]
                se = statistics.stdev(diff) / len(diff) ** 0.5 if len(diff) > 1 else float("nan")
                line += f" {statistics.fmean(diff):+.2f} ± {se:.2f} |"
            lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Append a row per kept model not yet in ``--results``, then print the table of every row."""
    args = parse(argv)
    results = Path(args.results)
    if not args.table_only:
        use_available_cpu_threads()
        reading = member_reading(args, "hfadapt-label-shift-")
        data, config, model_path, tokenizer, store = reading
        done = {(r["pair"], r["method"], r["seed"]) for r in load_results(results)}
        for seed in args.seeds:
            for pair in args.pairs:
                keys = {m: kept_member(reading, pair, m, seed) for m in args.methods if (pair, m, seed) not in done}
                todo = [m for m, key in keys.items() if key is not None]
                if not todo:
                    continue
                splits = tokenised_pair(data, pair, seed, tokenizer)
                prior = class_prior(source_labels(splits), len(splits.label_names))
                make_model = model_factory(model_path, splits)
                for method in todo:
                    cache = Path(args.logits_dir) / f"{pair}_{method}_{seed}.pt" if args.logits_dir else None
                    if cache is not None and cache.exists():
                        kept = torch.load(cache)
                        logits, labels = kept["logits"], kept["labels"]
                    else:
                        model = loaded(make_model, store.load(pair, seed, keys[method]))
                        logits, labels = target_logits(model, splits, tokenizer, config.bf16)
                        if cache is not None:
                            cache.parent.mkdir(parents=True, exist_ok=True)
                            torch.save({"logits": logits, "labels": labels}, cache)
                    append_row(results, {"pair": pair, "method": method, "seed": seed,
                                         "source_prior": prior.tolist(),
                                         "shares": scores(logits, labels, prior, args.shares, args.draws, seed),
                                         "environment": environment(config.bf16)})
                    print(f"{pair} {method} seed {seed}: done", flush=True)
    print(table(load_results(results)))


if __name__ == "__main__":
    sys.exit(main())
