"""Do label-free validators pick good models? Checkpoints of several settings on the dev pairs, scored both ways.

For each transfer pair among books, dvd and electronics and each setting (a method and its hyperparameters), one run
of the packaged MiniLM is evaluated every ``--eval_steps`` optimizer steps: the validators of
``hfadapt.selection`` score each checkpoint without target labels, and its true target-test accuracy is recorded
beside them (``benchmarks/results/validators.jsonl``, one row per checkpoint; reruns skip what is there). The table
gives, per validator, over the checkpoints of each pair:

- the Spearman rank correlation between its score and target accuracy (mean over pairs),
- the target accuracy of the checkpoint it picks among all of them (a setting and a step), against the best
  checkpoint (an oracle that reads target labels),
- within each run, the target accuracy of the checkpoint it picks (what ``LabelFreeValidationCallback`` with
  ``metric_for_best_model`` keeps), against the run's best and its last checkpoint (the usual practice), averaged
  over runs.

    python benchmarks/validator_benchmark.py                     # every pair and setting (hours on 2 cores)
    python benchmarks/validator_benchmark.py --pairs dvd:electronics --settings none dann
    python benchmarks/validator_benchmark.py --table_only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
from pathlib import Path

from scipy.stats import spearmanr
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hfadapt import AdaptConfig, AdaptTrainer
from hfadapt.benchmarking.ledger import append_row, load_results, parse_setting
from hfadapt.benchmarking.pairs import DEFAULT_PAIRS, tokenised_pair
from hfadapt.cli.args import parse_with_config
from hfadapt.cli.recipes import recipe_path
from hfadapt.data import DataArguments
from hfadapt.evaluation.metrics import classification_metrics
from hfadapt.selection import VALIDATORS
from hfadapt.utils.offline_models import packaged_minilm_path
from hfadapt.utils.runtime import use_available_cpu_threads

REPO = Path(__file__).resolve().parents[1]

DEFAULT_SETTINGS = ["none", "dann", "dann:grl_max_lambda=1.0", "mcc", "entropy:entropy_weight=1.0", "mmd",
                    "cdan", "im"]
"""Methods with the recipe's settings, plus two deliberately aggressive ones, so checkpoints range from good to
harmful (a validator must tell them apart)."""


def complete_pairs(rows: list[dict], settings: list[str]) -> set[tuple[str, int]]:
    """``(pair, seed)`` whose runs of every setting in ``settings`` are in ``rows``."""
    have: dict[tuple[str, int], set[str]] = {}
    for r in rows:
        have.setdefault((r["pair"], r["seed"]), set()).add(r["setting"])
    return {key for key, done in have.items() if set(settings) <= done}


def selection_table(rows: list[dict], validators: list[str]) -> str:
    """Markdown: per validator, mean over pairs of the Spearman rho between its score and target accuracy (over the
    pair's checkpoints) and the target accuracy (%) of the checkpoint it picks among all the pair's checkpoints
    (choosing a setting and a step: hyperparameter selection) against the best one; then, within each run, of the
    checkpoint it picks (what ``metric_for_best_model`` with the callback keeps) against the run's best and last
    checkpoints (means over runs)."""
    pairs = sorted({r["pair"] for r in rows})
    header = ["| validator | Spearman rho (mean over pairs) | picked checkpoint | best checkpoint "
              "| picked within each run | best within each run | last checkpoint |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    lines = []
    for name in validators:
        rhos, picked, best, run_picked, run_best, run_last = [], [], [], [], [], []
        for pair in pairs:
            points = [r for r in rows if r["pair"] == pair and name in r["scores"]]
            if len(points) < 3:
                continue
            accuracy = [r["target_accuracy"] for r in points]
            rho = spearmanr([r["scores"][name] for r in points], accuracy).statistic
            rhos.append(0.0 if rho != rho else float(rho))  # a constant score has no rank correlation
            picked.append(max(points, key=lambda r: r["scores"][name])["target_accuracy"])
            best.append(max(accuracy))
            runs: dict[tuple[str, int], list[dict]] = {}
            for r in points:
                runs.setdefault((r["setting"], r["seed"]), []).append(r)
            for run in runs.values():
                run_picked.append(max(run, key=lambda r: r["scores"][name])["target_accuracy"])
                run_best.append(max(r["target_accuracy"] for r in run))
                run_last.append(max(run, key=lambda r: r["step"])["target_accuracy"])
        if rhos:
            cells = [statistics.mean(v) for v in (picked, best, run_picked, run_best, run_last)]
            lines.append(f"| {name} | {statistics.mean(rhos):+.2f} | "
                         + " | ".join(f"{100 * c:.2f}" for c in cells) + " |")
    return "\n".join(header + lines)


def main(argv: list[str] | None = None) -> None:
    """Score the checkpoints of the runs the results file does not hold yet (unless ``--table_only``), then write
    the selection table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="*", default=DEFAULT_PAIRS)
    parser.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--max_steps", type=int, default=100)
    parser.add_argument("--eval_steps", type=int, default=20)
    parser.add_argument("--max_length", type=int, default=64)
    parser.add_argument("--max_eval_samples", type=int, default=1000)
    parser.add_argument("--validator_rows", type=int, default=500, help="rows per domain each validator reads")
    parser.add_argument("--train_sampling_strategy", default="random", choices=["random", "group_by_length"],
                        help="batch order (the rows so far are random)")
    parser.add_argument("--recipe", default=str(recipe_path("text")))
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "validators.jsonl"))
    parser.add_argument("--table", default=str(REPO / "benchmarks" / "results" / "validators.md"))
    parser.add_argument("--table_only", action="store_true")
    args = parser.parse_args(argv)
    validators = sorted(VALIDATORS)
    budget = {k: getattr(args, k) for k in ("max_steps", "eval_steps", "max_length", "max_eval_samples",
                                            "validator_rows", "train_sampling_strategy")}
    results_path = Path(args.results)
    # checkpoints of another budget are not compared
    rows = [r for r in load_results(results_path) if r.get("budget") == budget]
    if not args.table_only:
        use_available_cpu_threads()
        scratch = tempfile.mkdtemp(prefix="hfadapt-validators-")
        # the recipe's data (the demo reviews unless it names others) with this benchmark's budget
        recipe_data, base = parse_with_config((DataArguments, AdaptConfig),
                                              ["--output_dir", scratch, "--disable_tqdm", "true",
                                               "--logging_steps", "1000"], default_config=args.recipe)
        data = dataclasses.replace(recipe_data, max_length=args.max_length, max_train_samples=None,
                                   max_eval_samples=args.max_eval_samples)
        model_path = packaged_minilm_path()
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        done = {(r["pair"], r["setting"], r["seed"]) for r in rows}
        results_path.parent.mkdir(parents=True, exist_ok=True)
        for pair in args.pairs:
            for seed in args.seeds:
                todo = [s for s in args.settings if (pair, s, seed) not in done]
                if not todo:
                    continue
                splits = tokenised_pair(data, pair, seed, tokenizer)
                for setting in todo:
                    method, overrides = parse_setting(setting)
                    config = dataclasses.replace(
                        base, method=method, seed=seed, max_steps=args.max_steps, eval_strategy="steps",
                        train_sampling_strategy=args.train_sampling_strategy,
                        eval_steps=args.eval_steps, label_free_validators=validators,
                        label_free_max_rows=args.validator_rows, **overrides)
                    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
                    trainer = AdaptTrainer(model, config, train_dataset=splits.source_train,
                                           target_dataset=splits.target_train,
                                           eval_dataset={"source_val": splits.source_val,
                                                         "target_test": splits.target_test},
                                           processing_class=tokenizer, compute_metrics=classification_metrics)
                    trainer.train()
                    history = trainer.state.log_history
                    for entry in history:
                        if "eval_target_test_accuracy" not in entry:
                            continue
                        scores = next(e for e in history if e.get("step") == entry["step"] and "eval_snd" in e)
                        row = {"pair": pair, "setting": setting, "seed": seed, "step": entry["step"],
                               "budget": budget,
                               "target_accuracy": entry["eval_target_test_accuracy"],
                               "scores": {v: scores[f"eval_{v}"] for v in validators}}
                        rows.append(row)
                        append_row(results_path, row)
                    print(f"{pair} {setting} seed {seed}: done", flush=True)
    complete = complete_pairs(rows, args.settings)
    rows = [r for r in rows if (r["pair"], r["seed"]) in complete]  # a pair half done would pick among fewer settings
    table = selection_table(rows, validators)
    Path(args.table).write_text(f"{len(rows)} checkpoints; pairs {sorted({r['pair'] for r in rows})}; settings "
                                f"{sorted({r['setting'] for r in rows})}; budget {json.dumps(budget)}\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
