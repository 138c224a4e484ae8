"""Benchmark: source-only and every alignment method on the transfer pairs of the Amazon reviews, several seeds.

Each (pair, method, seed) run is appended as one JSON line to --results as soon as it finishes, and runs already
there (same budget) are skipped, so the benchmark can be run in pieces and resumed. The table is written from
whatever results match the current budget: target accuracy per pair (mean +- std over seeds), the average over
pairs, and the difference to source-only on the same pairs and seeds.

    # the full grid: 6 pairs x 3 seeds x every method, reduced budget (hours on 2 CPU cores)
    python benchmarks/sentiment_benchmark.py
    # one piece of it
    python benchmarks/sentiment_benchmark.py --pairs books:electronics --methods none dann --seeds 1
    # two 1-thread processes sharing the grid (each run is claimed by one of them)
    HFADAPT_NUM_THREADS=1 python benchmarks/sentiment_benchmark.py --claim_dir /tmp/grid &
    HFADAPT_NUM_THREADS=1 python benchmarks/sentiment_benchmark.py --claim_dir /tmp/grid
    # the converged reference budget: 128 tokens, at least 300 steps, until source validation stops rising
    python benchmarks/sentiment_benchmark.py --max_length 128 --max_steps 600 --eval_steps 50 \\
        --methods none self_training --results benchmarks/results/sentiment_converged.jsonl \\
        --table benchmarks/results/sentiment_converged.md --multi_source_pairs
    # only rebuild the table from the results file
    python benchmarks/sentiment_benchmark.py --table_only
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hfadapt import AdaptConfig
from hfadapt.cli_args import parse_with_config
from hfadapt.data import DataArguments, load_transfer_splits, tokenize_splits
from hfadapt.experiment import train_and_evaluate
from hfadapt.methods import ALIGNMENT_METHODS, SOURCE_ONLY
from hfadapt.offline_models import packaged_minilm_path
from hfadapt.recipes import recipe_path
from hfadapt.runtime import use_available_cpu_threads

REPO = Path(__file__).resolve().parents[1]
DOMAINS = ("books", "dvd", "electronics")
DEFAULT_PAIRS = [f"{s}:{t}" for s, t in itertools.permutations(DOMAINS, 2)]
MULTI_SOURCE_PAIRS = [f"{'+'.join(d for d in DOMAINS if d != t)}:{t}" for t in DOMAINS]
RECIPE_DATA_KEYS = ("dataset_name", "domain_column_name", "source", "target", "max_length",
                    "validation_fraction")  # set per run by this script
DEFAULTS_BEFORE_RECIPE = {"grl_max_lambda": 1.0, "alignment_balancing": "fixed", "mmd_weight": 1.0, "jan_weight": 1.0,
                          "coral_weight": 1.0, "iw_flattening": 1.0, "udalm_weight": 0.1}
"""``AdaptConfig``'s defaults before they became the recipe's: what a row that predates one of these fields ran
with."""
BUDGET_KEYS = ("max_steps", "max_length", "max_train_samples", "max_eval_samples", "per_device_train_batch_size",
               "learning_rate", "train_sampling_strategy")
CONVERGENCE_KEYS = ("eval_steps", "early_stopping_patience", "min_steps")
"""Budget keys of a run that trains until source validation stops rising (recorded only with ``--eval_steps``)."""


def parse(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="*", default=DEFAULT_PAIRS,
                        help="source:target pairs; 'books+dvd:electronics' is a multi-source pair")
    parser.add_argument("--multi_source_pairs", nargs="*", default=MULTI_SOURCE_PAIRS,
                        help="multi-source pairs, tabled separately (two domains -> the third)")
    parser.add_argument("--multi_source_methods", nargs="*", default=None,
                        help="methods for the multi-source pairs (default: --methods)")
    parser.add_argument("--methods", nargs="+", default=[SOURCE_ONLY, *sorted(ALIGNMENT_METHODS)],
                        help="method names, combinations (dann+mmd) or a method with settings of its own "
                             "(none:source_weighting=auto)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--max_steps", type=int, default=100, help="optimizer steps per run (reduced budget)")
    parser.add_argument("--max_length", type=int, default=64,
                        help="tokens per review (64 halves the cost of the example's 128 on 2 CPU cores)")
    parser.add_argument("--eval_steps", type=int, default=0,
                        help="evaluate on source validation every N steps and keep the best checkpoint by it (0: "
                             "no evaluation during training, the quick screen)")
    parser.add_argument("--early_stopping_patience", type=int, default=4,
                        help="with --eval_steps: stop after this many evaluations without a better source-"
                             "validation accuracy")
    parser.add_argument("--min_steps", type=int, default=300,
                        help="with --eval_steps: optimizer steps before early stopping may end a run")
    parser.add_argument("--max_train_samples", type=int, default=None)
    parser.add_argument("--max_eval_samples", type=int, default=1000)
    parser.add_argument("--train_sampling_strategy", default="random", choices=["random", "group_by_length"],
                        help="batch order (group_by_length pads less; the grid's rows so far are random)")
    parser.add_argument("--dataset_name", default="demo:amazon-msd",
                        help="the reviews: a table with a 'domain' column (default: the shipped demo data), or the "
                             "authors' folder of <domain>/{positive,negative}.review")
    parser.add_argument("--model_name_or_path", default=None)
    parser.add_argument("--recipe", default=str(recipe_path("text")),
                        help="YAML recipe for everything else (method hyperparameters, batch size, lr)")
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "sentiment.jsonl"))
    parser.add_argument("--table", default=str(REPO / "benchmarks" / "results" / "sentiment.md"))
    parser.add_argument("--table_only", action="store_true")
    parser.add_argument("--claim_dir", default=None,
                        help="share the grid between processes started with the same folder: each run is claimed "
                             "by creating <claim_dir>/<pair>_<method>_<seed> first (a fresh folder for a fresh "
                             "start: a claim left by a killed process is not retried)")
    return parser.parse_args(argv)


def claim(claim_dir: str | None, pair: str, method: str, seed: int) -> bool:
    """True if this process may train the run: always without ``claim_dir``; else if it is the first to create the
    run's folder there (``os.mkdir`` is atomic, so two processes never train the same run)."""
    if claim_dir is None:
        return True
    Path(claim_dir).mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(Path(claim_dir) / f"{pair}_{method}_{seed}")
    except FileExistsError:
        return False
    return True


def load_results(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def parse_setting(spec: str) -> tuple[str, dict]:
    """A method with settings of its own: ``"dann:grl_max_lambda=1.0,dann_weight=0.5"`` -> ``("dann",
    {"grl_max_lambda": 1.0, "dann_weight": 0.5})``; a value that is not JSON is a string (``source_weighting=auto``)."""
    method, _, rest = spec.partition(":")
    overrides = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return method, overrides


def recipe_of(config: AdaptConfig, spec: str) -> dict:
    """The adaptation settings a run of ``spec`` (a method, or a method with settings: :func:`parse_setting`)
    depends on (:meth:`AdaptConfig.adaptation_settings`), so that retuning one method does not void the rows of the
    others."""
    method, overrides = parse_setting(spec)
    return dataclasses.replace(config, **overrides).adaptation_settings(method)


def config_defaults() -> dict:
    """``{field: default}`` of :class:`AdaptConfig`'s fields (JSON values, as rows store them), with the fields whose
    default changed since rows were first written at their former default (:data:`DEFAULTS_BEFORE_RECIPE`)."""
    values = {}
    for f in AdaptConfig.flat_fields():  # its fields and every method setting
        if f.default is not dataclasses.MISSING:
            values[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            values[f.name] = f.default_factory()
    return json.loads(json.dumps({**values, **DEFAULTS_BEFORE_RECIPE}, default=str))


def same_recipe(row: dict, recipe: dict, defaults: dict | None = None) -> bool:
    """A row matches if its recipe agrees with ``recipe`` on every field it records, and a field added to
    ``AdaptConfig`` after the row was written is at its default in ``recipe`` (the value the row ran with): a new
    field at its default does not void older rows, a recipe that moves it does."""
    if "recipe" not in row:
        return False
    defaults = config_defaults() if defaults is None else defaults
    return all(row["recipe"][k] == v if k in row["recipe"] else k not in defaults or defaults[k] == v
               for k, v in recipe.items())


def tokenised_splits(dataset_name: str, pair: str, seed: int, tokenizer, max_length: int,
                     max_train_samples: int | None, max_eval_samples: int | None):
    """The :class:`~hfadapt.data.TransferSplits` of ``pair`` (``"books:dvd"``, or ``"books+dvd:electronics"`` for
    several sources) of the table ``dataset_name`` (its ``domain`` column), split with ``seed`` and tokenised to
    ``max_length`` tokens: the data path of the example and ``hfadapt train``."""
    source, target = pair.split(":")
    data = DataArguments(dataset_name=dataset_name, domain_column_name="domain", source=source, target=target,
                         max_length=max_length, max_train_samples=max_train_samples, max_eval_samples=max_eval_samples)
    return tokenize_splits(load_transfer_splits(data, seed=seed), tokenizer, data.text_columns, max_length)


def environment() -> dict:
    """Where a row ran (``{"device": "cpu" | GPU name, "torch": version, "transformers": version}``): rows of one
    table should share it, since the same run gives slightly different numbers on another device or release."""
    import torch
    import transformers

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return {"device": device, "torch": torch.__version__, "transformers": transformers.__version__}


def budget_of(args, config: AdaptConfig) -> dict:
    values = {**vars(args), **{k: getattr(config, k) for k in ("per_device_train_batch_size", "learning_rate")}}
    return {k: values[k] for k in BUDGET_KEYS + (CONVERGENCE_KEYS if args.eval_steps else ())}


def convergence_settings(args, output_dir: str) -> dict:
    """``AdaptConfig`` overrides that train until source-validation accuracy stops rising (early stopping after
    ``min_steps``, the best checkpoint by source validation kept); empty without ``--eval_steps``."""
    if not args.eval_steps:
        return {}
    return {"output_dir": output_dir, "eval_strategy": "steps", "eval_steps": args.eval_steps,
            "save_strategy": "steps", "save_steps": args.eval_steps, "save_total_limit": 1,
            "load_best_model_at_end": True, "metric_for_best_model": "source_val_accuracy",
            "early_stopping_patience": args.early_stopping_patience, "early_stopping_min_steps": args.min_steps}


def markdown_table(rows: list[dict], methods: list[str], pairs: list[str]) -> str:
    """Target accuracy (%) per pair and method, mean +- std over seeds; average over pairs; gain vs source-only:
    the mean of the paired differences (same pair and seed) +- their standard error, which says whether a gain or a
    negative transfer stands out of the seed-to-seed noise."""
    by = {}
    for r in rows:
        by.setdefault((r["pair"], r["method"]), {})[r["seed"]] = 100 * r["target_accuracy"]
    header = ("| method | " + " | ".join(p.replace(":", " -> ") for p in pairs)
              + " | average | vs source-only (± s.e.) |")
    lines = [header, "|---|" + "---:|" * (len(pairs) + 2)]
    for method in methods:
        cells, means, gains = [], [], []
        for pair in pairs:
            accs = by.get((pair, method), {})
            if not accs:
                cells.append("—")
                continue
            mean = statistics.fmean(accs.values())
            std = statistics.stdev(accs.values()) if len(accs) > 1 else 0.0
            cells.append(f"{mean:.2f} ± {std:.2f} (n={len(accs)})")
            means.append(mean)
            base = by.get((pair, SOURCE_ONLY), {})
            gains += [accs[s] - base[s] for s in accs if s in base]
        if not means:
            continue  # no run of this method on these pairs yet
        average = f"{statistics.fmean(means):.2f}" if len(means) == len(pairs) else "—"
        gain = "—" if method == SOURCE_ONLY or not gains else f"{statistics.fmean(gains):+.2f}"
        if method != SOURCE_ONLY and len(gains) > 1:
            gain += f" ± {statistics.stdev(gains) / len(gains) ** 0.5:.2f}"
        lines.append(f"| {'source-only' if method == SOURCE_ONLY else method} | " + " | ".join(cells)
                     + f" | {average} | {gain} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    results_path, table_path = Path(args.results), Path(args.table)
    scratch = tempfile.mkdtemp(prefix="hfadapt-bench-")
    (base_config,) = parse_with_config((AdaptConfig,), ["--output_dir", scratch, "--disable_tqdm", "true",
                                                        "--logging_steps", "1000"], default_config=args.recipe,
                                     ignore_keys=RECIPE_DATA_KEYS)
    budget = budget_of(args, base_config)

    def recipe(method):
        return json.loads(json.dumps(recipe_of(base_config, method)))

    def matching(rows):
        return [r for r in rows if r["budget"] == budget and same_recipe(r, recipe(r["method"]))]

    if not args.table_only:
        use_available_cpu_threads()
        model_path = args.model_name_or_path or packaged_minilm_path()
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        done = {(r["pair"], r["method"], r["seed"]) for r in matching(load_results(results_path))}
        results_path.parent.mkdir(parents=True, exist_ok=True)
        multi_methods = args.multi_source_methods if args.multi_source_methods is not None else args.methods
        # seed-major, so that a grid stopped part-way holds whole seeds of every pair
        grid = [(pair, seed, args.methods) for seed, pair in itertools.product(args.seeds, args.pairs)]
        grid += [(pair, seed, multi_methods) for seed, pair in itertools.product(args.seeds, args.multi_source_pairs)]
        for pair, seed, methods in grid:
            todo = [m for m in methods if (pair, m, seed) not in done]
            if not todo:
                continue
            splits = None  # tokenised once this process has claimed a run of the pair (the other may hold them all)
            for method in todo:
                if not claim(args.claim_dir, pair, method, seed):
                    continue
                if splits is None:
                    splits = tokenised_splits(args.dataset_name, pair, seed, tokenizer, args.max_length,
                                              args.max_train_samples, args.max_eval_samples)

                def make_model(names=splits.label_names):
                    return AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=len(names))

                name, overrides = parse_setting(method)
                run_dir = Path(scratch) / f"{pair}_{method}_{seed}".replace(":", "-")
                config = dataclasses.replace(base_config, method=name, seed=seed, max_steps=args.max_steps,
                                             train_sampling_strategy=args.train_sampling_strategy,
                                             **convergence_settings(args, str(run_dir)), **overrides)
                run = train_and_evaluate(make_model, config, splits, tokenizer, save=False)
                shutil.rmtree(run_dir, ignore_errors=True)  # the run's checkpoints
                # the spec, not run's method name: "none:source_weighting=auto" must not read as plain "none"
                row = {**run, "pair": pair, "method": method, "seed": seed, "budget": budget, "recipe": recipe(method),
                       "environment": environment()}
                with results_path.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{pair} {method} seed {seed}: target {100 * run['target_accuracy']:.2f} "
                      f"({run['wall_time_s']} s)", flush=True)
    rows = matching(load_results(results_path))
    table = markdown_table(rows, args.methods, args.pairs)
    multi_methods = args.multi_source_methods if args.multi_source_methods is not None else args.methods
    if args.multi_source_pairs:
        table += "\n\nMulti-source (two domains -> the third):\n\n" + markdown_table(rows, multi_methods,
                                                                                   args.multi_source_pairs)
    table_path.parent.mkdir(parents=True, exist_ok=True)
    table_path.write_text(f"Budget: {json.dumps(budget)}; recipe {Path(args.recipe).name}\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    sys.exit(main())
