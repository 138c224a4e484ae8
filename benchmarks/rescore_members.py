"""Score the models a fusion grid kept (``sentiment_benchmark.py --members_dir``), and their fusions, with label-free
validators the grid did not record; nothing is trained.

A grid records the validators it was given; measuring others on the same models (for
`validator_agreement.py`) would otherwise mean training every run again. Each row gets the model's source-validation
and target accuracy and the validators' scores, with the recipe's precision, rows and settings, so a DEV scored
here equals the grid row's when the kept weights are that row's model.

    python benchmarks/rescore_members.py --members_dir /tmp/members --seeds 2 3 \
        --methods none self_training adamatch --fusions uniform_soup:self_training/adamatch \
        --label_free_validators im entropy snd dev --results /tmp/rescored.jsonl --claim_dir /tmp/claims
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from hfadapt.benchmarking.fusion import Fusion, fused_scores, model_factory
from hfadapt.benchmarking.ledger import append_row, claim, environment, load_results
from hfadapt.benchmarking.members import add_member_arguments, kept_member, member_reading
from hfadapt.benchmarking.pairs import tokenised_pair
from hfadapt.utils.runtime import use_available_cpu_threads


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line: where the members are, which blocks and models, which validators, where rows go."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_member_arguments(parser, methods_help="kept members to score alone")
    parser.add_argument("--fusions", nargs="*", default=[], help="fusions of kept members to score, as the grid's")
    parser.add_argument("--label_free_validators", nargs="+", required=True)
    parser.add_argument("--claim_dir", default=None, help="shared by processes scoring one grid side by side")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Append a row per kept model (and fusion) of each complete block that ``--results`` does not hold yet."""
    args = parse(argv)
    use_available_cpu_threads()
    reading = member_reading(args, "hfadapt-rescore-")
    data, config, model_path, tokenizer, store = reading
    config = dataclasses.replace(config, label_free_validators=args.label_free_validators, label_free_strategy="end")
    results = Path(args.results)
    done = {(r["pair"], r["method"], r["seed"]) for r in load_results(results)}
    # {row's method: fusion}; a member alone is the fusion of one model: the same scoring, and the same row fields
    models = {m: Fusion("uniform_soup", (m,)) for m in args.methods} | {f: Fusion.parse(f) for f in args.fusions}
    needed = sorted({m for f in models.values() for m in f.members})
    for seed in args.seeds:
        for pair in args.pairs:
            keys = {m: kept_member(reading, pair, m, seed) for m in needed}
            if None in keys.values():
                print(f"{pair} seed {seed}: not every member is kept, skipped", flush=True)
                continue
            todo = [name for name, f in models.items() if (pair, name, seed) not in done
                    and claim(args.claim_dir, pair, f.file_name, seed)]
            if not todo:
                continue
            splits = tokenised_pair(data, pair, seed, tokenizer)
            weights = {m: store.load(pair, seed, keys[m]) for m in needed}
            make_model = model_factory(model_path, splits)
            for name in todo:
                scores = fused_scores(models[name], weights, make_model, splits, tokenizer, config)
                row = {**scores, "pair": pair, "method": name, "seed": seed,
                       "rescored": {"members_dir": str(args.members_dir), "members": list(models[name].members)},
                       "environment": environment(config.bf16)}
                append_row(results, row)
                print(f"{pair} {name} seed {seed}: target {100 * scores['target_accuracy']:.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
