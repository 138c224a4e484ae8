"""Benchmark: source-only and every alignment method on the transfer pairs of the Amazon reviews, several seeds.

Each (pair, method, seed) run is appended as one JSON line to --results as soon as it finishes, and runs already
there (same budget) are skipped, so the benchmark can be run in pieces and resumed. The table is written from
whatever results match the current budget: target accuracy per pair (mean +- std over seeds), the average over
pairs, and the difference to source-only on the same pairs and seeds.
The ledger (appending rows, claims, matching rows to the budget and recipe, the table) is
:mod:`hfadapt.benchmarking.ledger`; the data is the recipe's (:class:`hfadapt.data.DataArguments`, the shipped demo
reviews by default), each pair setting its domains (:mod:`hfadapt.benchmarking.pairs`).

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
    # two-stage self-training: each pair's source-only model, then self-training from it (no warm-up)
    python benchmarks/sentiment_benchmark.py --methods none \\
        self_training:adapt_from_source_only=true,self_training_warmup=0
    # fused models beside their members: AdaMatch and self-training's probabilities averaged, on each pair and seed
    python benchmarks/sentiment_benchmark.py --methods none self_training adamatch \\
        --fusions ensemble:self_training/adamatch
    # the same with N processes training a pair's members side by side, the members kept in a shared folder
    HFADAPT_NUM_THREADS=1 python benchmarks/sentiment_benchmark.py --methods none self_training adamatch \\
        --fusions ensemble:self_training/adamatch --claim_dir /tmp/grid --members_dir /tmp/members &  # (N times)
    # a grid whose killed runs resume from their last checkpoint when started again (rows say from which step)
    python benchmarks/sentiment_benchmark.py --claim_dir /tmp/grid --scratch_dir /tmp/runs
    # only rebuild the table from the results file
    python benchmarks/sentiment_benchmark.py --table_only
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import shutil
import sys
import tempfile
from pathlib import Path

from transformers import AutoTokenizer

from hfadapt import AdaptConfig
from hfadapt.benchmarking.fusion import Fusion, fused_scores, fusion_members, model_factory
from hfadapt.benchmarking.ledger import (
    PRIOR_MATCHED,
    append_row,
    block_gains,
    budget_of,
    claim,
    environment,
    fusion_recipe,
    gain_summary,
    key_digest,
    load_results,
    markdown_table,
    matching_rows,
    parse_setting,
    prior_matched_rows,
    row_recipe,
    run_key,
    validator_table,
)
from hfadapt.benchmarking.pairs import DEFAULT_PAIRS, MULTI_SOURCE_PAIRS, read_recipe, tokenised_pair
from hfadapt.benchmarking.prior_matching import loaded, prior_matched_scores
from hfadapt.benchmarking.store import MemberStore
from hfadapt.cli.recipes import recipe_path
from hfadapt.data import DataArguments
from hfadapt.evaluation.experiment import train_and_evaluate
from hfadapt.methods import ALIGNMENT_METHODS, SOURCE_ONLY
from hfadapt.trainer.checkpointing import checkpoint_step, last_checkpoint
from hfadapt.utils.offline_models import packaged_minilm_path
from hfadapt.utils.precision import MIXED_PRECISIONS
from hfadapt.utils.runtime import use_available_cpu_threads

REPO = Path(__file__).resolve().parents[1]


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The benchmark's flags (``argv``, default ``sys.argv``)."""
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
    parser.add_argument("--dataset_name", default=None,
                        help="the reviews: a table with a 'domain' column (default: the recipe's, the shipped demo "
                             "data), or the authors' folder of <domain>/{positive,negative}.review")
    parser.add_argument("--model_name_or_path", default=None)
    parser.add_argument("--mixed_precision", default=None, choices=MIXED_PRECISIONS,
                        help="overrides the recipe's ('no': fp32), e.g. to add rows to a grid run in another "
                             "precision; rows record theirs, and one table should share it")
    parser.add_argument("--recipe", default=str(recipe_path("text")),
                        help="YAML recipe for everything else (method hyperparameters, batch size, lr)")
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "sentiment.jsonl"))
    parser.add_argument("--table", default=str(REPO / "benchmarks" / "results" / "sentiment.md"))
    parser.add_argument("--label_free_validators", nargs="*", default=[],
                        help="label-free validators (hfadapt.selection) scored on each run's final model and "
                             "recorded in its row's 'validators', so that a method can be chosen without target "
                             "labels; they join the recipe, so such rows form a grid of their own")
    parser.add_argument("--fusions", nargs="*", default=[],
                        help="fused models scored on each pair and seed beside the runs, '<mode>:<method>/<method>' "
                             "(modes: ensemble, uniform_soup, greedy_soup by source-validation accuracy, wise_ft with "
                             "source-only first; hfadapt.fusion), e.g. "
                             "ensemble:self_training/adamatch; members are trained again where their rows exist "
                             "(their new rows, marked trained_again, are the ones tables read), and without "
                             "--members_dir a pair and seed with a fusion to score is claimed whole")
    parser.add_argument("--members_dir", default=None,
                        help="keep every run's trained weights in this folder (shared by the processes of "
                             "--claim_dir), so that a fusion of them, named now or in a later start, fuses them "
                             "without training them again; with --fusions, claim members and fusions one by one")
    parser.add_argument("--members_wait_s", type=float, default=3 * 3600,
                        help="with --members_dir: how long a process that has trained all it could waits for "
                             "members other processes are training (seconds)")
    parser.add_argument("--scratch_dir", default=None,
                        help="keep the runs' checkpoints here rather than in a temporary folder, so that a run "
                             "killed part-way resumes from its latest checkpoint when the grid is started again "
                             "(with a fresh --claim_dir); each finished run's folder is removed")
    parser.add_argument("--tapt_cache_dir", default=None,
                        help="keep each encoder after TAPT here (AdaptConfig.tapt_cache_dir): runs with tapt_steps "
                             "on the same target rows and seed, of any method or pair, pretrain once")
    parser.add_argument("--prior_matching", action="store_true",
                        help="score each run and fused model again after shifting its head bias so that its mean "
                             "prediction on the unlabelled target rows equals the source labels' class "
                             "distribution (hfadapt.modeling.prior_matching), in the row's 'prior_matched'")
    parser.add_argument("--table_only", action="store_true")
    parser.add_argument("--claim_dir", default=None,
                        help="share the grid between processes started with the same folder: each run is claimed "
                             "by creating <claim_dir>/<pair>_<method>_<seed> first (a fresh folder for a fresh "
                             "start: a claim left by a killed process is not retried)")
    return parser.parse_args(argv)


def convergence_settings(args) -> dict:
    """``AdaptConfig`` overrides that train until source-validation accuracy stops rising (early stopping after
    ``min_steps``, the best checkpoint by source validation kept); without ``--eval_steps`` (the quick screen) no
    evaluation, checkpoint or early stopping during training, whatever the recipe sets."""
    if not args.eval_steps:
        return {"eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False,
                "early_stopping_patience": 0, "early_stopping_min_steps": 0}
    return {"eval_strategy": "steps", "eval_steps": args.eval_steps,
            "save_strategy": "steps", "save_steps": args.eval_steps, "save_total_limit": 1,
            "load_best_model_at_end": True, "metric_for_best_model": "source_val_accuracy",
            "early_stopping_patience": args.early_stopping_patience, "early_stopping_min_steps": args.min_steps}


def run_config(base_config: AdaptConfig, args, spec: str, seed: int, run_dir: Path) -> AdaptConfig:
    """The configuration of one run: the recipe with ``spec``'s method and settings, the seed and the budget."""
    name, overrides = parse_setting(spec)
    return dataclasses.replace(base_config, output_dir=str(run_dir).replace(":", "-"), method=name, seed=seed,
                               max_steps=args.max_steps, train_sampling_strategy=args.train_sampling_strategy,
                               **convergence_settings(args), **overrides)


def resumable(config: AdaptConfig, key: dict) -> AdaptConfig:
    """``config`` with its run folder named after a digest of ``key`` (:func:`run_key`: what defines the run), so
    that a run resumes only a checkpoint of the same run, and ``resume_from_checkpoint="true"``: a run continues
    from its folder's latest checkpoint (:func:`~hfadapt.evaluation.experiment.checkpoint_to_resume`)."""
    return dataclasses.replace(config, output_dir=f"{config.output_dir}_{key_digest(key)}",
                               resume_from_checkpoint="true")


def train_run(make_model, config: AdaptConfig, splits, tokenizer, **kwargs) -> dict:
    """:func:`train_and_evaluate` without saving the model (``kwargs`` go to it), then its run folder (the
    checkpoints) removed. A run that continues a checkpoint (see :func:`resumable`) reports its step as
    ``resumed_from_step``; its ``wall_time_s`` counts the time since."""
    checkpoint = last_checkpoint(config.output_dir) if config.resume_from_checkpoint else None
    run = train_and_evaluate(make_model, config, splits, tokenizer, save=False, **kwargs)
    if checkpoint is not None:
        run["resumed_from_step"] = checkpoint_step(checkpoint)
    shutil.rmtree(config.output_dir, ignore_errors=True)
    return run


def grid_setup(args, scratch: str) -> tuple[DataArguments, AdaptConfig]:
    """The recipe's data (its table and domain column; each pair sets the domains) and configuration, with the
    benchmark's flags ``args`` over them; runs write under ``scratch``.

    Raises:
        FileNotFoundError, ValueError: a missing or malformed recipe (:func:`read_recipe`).
    """
    recipe_data, base_config = read_recipe(args, scratch)
    if args.label_free_validators:
        # a row records the final model's scores only, and source validation chooses the checkpoints: scoring at
        # every evaluation would add a pass over both validation sets each time for nothing the row keeps
        base_config = dataclasses.replace(base_config, label_free_validators=args.label_free_validators,
                                          label_free_strategy="end")
    if args.tapt_cache_dir:
        base_config = dataclasses.replace(base_config, tapt_cache_dir=args.tapt_cache_dir)
    data = dataclasses.replace(recipe_data, dataset_name=args.dataset_name or recipe_data.dataset_name,
                               max_length=args.max_length, max_train_samples=args.max_train_samples,
                               max_eval_samples=args.max_eval_samples)
    return data, base_config


def main(argv: list[str] | None = None) -> None:
    """Train the runs of the grid the ledger does not hold yet (unless ``--table_only``), then write the table."""
    args = parse(argv)
    results_path, table_path = Path(args.results), Path(args.table)
    scratch = args.scratch_dir or tempfile.mkdtemp(prefix="hfadapt-bench-")
    fusions = [Fusion.parse(spec) for spec in args.fusions]  # a bad spec fails before any training
    data, base_config = grid_setup(args, scratch)
    budget = budget_of(args, base_config)
    multi_methods = args.multi_source_methods if args.multi_source_methods is not None else args.methods
    # each row under the spec it ran as, should the recipe have moved a setting since (matching_rows)
    specs = [*dict.fromkeys([*args.methods, *multi_methods]), *[f.name for f in fusions]]
    if not args.table_only:
        use_available_cpu_threads()
        model_path = args.model_name_or_path or packaged_minilm_path()
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        done = {(r["pair"], r["method"], r["seed"])
                for r in matching_rows(load_results(results_path), budget, base_config, specs)}
        results_path.parent.mkdir(parents=True, exist_ok=True)
        # seed-major, so that a grid stopped part-way holds whole seeds of every pair
        grid = [(pair, seed, args.methods) for seed, pair in itertools.product(args.seeds, args.pairs)]
        grid += [(pair, seed, multi_methods) for seed, pair in itertools.product(args.seeds, args.multi_source_pairs)]
        store = MemberStore(args.members_dir) if args.members_dir else None
        waiting = []  # (pair, seed, fusions) scored once the store holds their members, trained here or elsewhere

        def key_of(spec: str, seed: int) -> dict:
            """The :func:`run_key` of ``spec``'s run with ``seed``, by which the store and scratch folders find it."""
            return run_key(run_config(base_config, args, spec, seed, Path(scratch)), spec, budget, model_path,
                           dataclasses.asdict(data))

        def kept(config: AdaptConfig, spec: str) -> AdaptConfig:
            """With ``--scratch_dir``, ``config`` made :func:`resumable` (keyed by :func:`run_key`)."""
            return resumable(config, key_of(spec, config.seed)) if args.scratch_dir else config

        def score_fusions(pair, seed, fused, splits, weights_of):
            """Score and append the rows of ``fused`` on ``pair`` and ``seed`` (``weights_of(member)``: weights)."""
            members_config = run_config(base_config, args, SOURCE_ONLY, seed, Path(scratch) / f"{pair}_{seed}")
            make_model = model_factory(model_path, splits)
            for fusion in fused:
                trained = {m: weights_of(m) for m in fusion.members}
                scores = fused_scores(fusion, trained, make_model, splits, tokenizer, base_config,
                                      prior_matching=args.prior_matching)
                row = {**scores, "pair": pair, "method": fusion.name, "seed": seed, "budget": budget,
                       "fusion": {"mode": fusion.mode, "members": list(fusion.members)},
                       "recipe": fusion_recipe(members_config, list(fusion.members)),
                       "environment": environment(base_config.bf16)}
                append_row(results_path, row)
                print(f"{pair} {fusion.name} seed {seed}: target {100 * scores['target_accuracy']:.2f}", flush=True)

        def score_waiting(timeout_s: float, final: bool = False):
            """Score the fusions in ``waiting`` whose members the store holds, waiting up to ``timeout_s`` for each;
            the others stay in ``waiting`` (``final``: reported as not scored)."""
            for pair, seed, fused in list(waiting):
                ready, pending = [], []
                for fusion in fused:
                    if not store.wait(pair, seed, [key_of(m, seed) for m in fusion.members], timeout_s):
                        pending.append(fusion)
                        if final:
                            print(f"{pair} {fusion.name} seed {seed}: not scored, a member's weights did not reach "
                                  f"{store.folder} within {timeout_s} s (run again to score it)", flush=True)
                    elif claim(args.claim_dir, pair, fusion.file_name, seed):
                        ready.append(fusion)
                waiting.remove((pair, seed, fused))
                if pending:
                    waiting.append((pair, seed, pending))
                if ready:  # each member read from the store once, however many fusions share it
                    kept = {m: store.load(pair, seed, key_of(m, seed)) for m in fusion_members(ready)}
                    score_fusions(pair, seed, ready, tokenised_pair(data, pair, seed, tokenizer), kept.__getitem__)

        for pair, seed, methods in grid:
            todo = [m for m in methods if (pair, m, seed) not in done]
            fused = [f for f in fusions if (pair, f.name, seed) not in done]
            if not todo and not fused:
                continue
            members = fusion_members(fused)
            # without a store a block with fusions to score is claimed whole: its members are trained in this process
            whole = bool(fused) and store is None
            if whole and not claim(args.claim_dir, pair, "fused", seed):
                continue
            if store is not None and fused:
                # the others are kept already (under any spec naming the same run)
                members = [m for m in members if not store.has(pair, seed, key_of(m, seed))]
                waiting.append((pair, seed, fused))
            splits = None  # tokenised once this process has claimed a run of the pair (the other may hold them all)
            baseline_weights = None  # the trained source-only model of this pair and seed, for two-stage methods
            trained = {}  # {member: trained weights} for the fusions of a block claimed whole
            for method in dict.fromkeys([*todo, *members]):
                if not whole and not claim(args.claim_dir, pair, method, seed):
                    continue
                if splits is None:
                    splits = tokenised_pair(data, pair, seed, tokenizer)
                make_model = model_factory(model_path, splits)
                config = kept(run_config(base_config, args, method, seed, Path(scratch) / f"{pair}_{method}_{seed}"),
                              method)
                start = None
                if config.two_stage:  # from this pair's trained baseline
                    baseline_key = key_of(SOURCE_ONLY, seed)
                    if baseline_weights is None and store is not None and store.has(pair, seed, baseline_key):
                        baseline_weights = store.load(pair, seed, baseline_key)
                    if baseline_weights is None:  # the 'none' run again (same seed): this process did not train it
                        baseline = kept(run_config(base_config, args, SOURCE_ONLY, seed,
                                                   Path(scratch) / f"{pair}_{seed}"), SOURCE_ONLY)
                        baseline_weights = train_run(make_model, baseline, splits, tokenizer,
                                                     keep_weights=True)["weights"]
                    start = baseline_weights
                run = train_run(make_model, config, splits, tokenizer, initial_weights=start,
                                keep_weights=method == SOURCE_ONLY or method in members or args.prior_matching
                                or store is not None)
                weights = run.pop("weights", None)
                if method == SOURCE_ONLY:
                    baseline_weights = weights
                if store is not None:  # every run, so that a fusion added in a later start need not train it
                    store.save(pair, seed, key_of(method, seed), weights, method)
                elif method in members:
                    trained[method] = weights
                # the spec, not run's method name: "none:source_weighting=auto" must not read as plain "none"
                row = {**run, "pair": pair, "method": method, "seed": seed, "budget": budget,
                       "recipe": row_recipe(config, method), "environment": environment(config.bf16)}
                if args.prior_matching:
                    row["prior_matched"] = prior_matched_scores(loaded(make_model, weights), splits, tokenizer, config)
                if (pair, method, seed) in done:  # trained again for a fusion (on another machine it can differ):
                    row["trained_again"] = True  # the row of the model fused, after the first (tables read the latest)
                append_row(results_path, row)
                # after the row is written: a line in the log means the results file holds the run
                print(f"{pair} {method} seed {seed}: target {100 * run['target_accuracy']:.2f} "
                      f"({run['wall_time_s']} s)", flush=True)
            if whole:
                score_fusions(pair, seed, fused, splits, trained.__getitem__)
            elif waiting:
                score_waiting(0.0)  # a block whose members are all kept is scored now, not after the whole grid
        if waiting:  # after this process's training: the members left are other processes'
            score_waiting(args.members_wait_s, final=True)
    rows = matching_rows(load_results(results_path), budget, base_config, specs)
    fused_names = [f.name for f in fusions]
    if args.prior_matching:  # each model beside its matched self
        rows += prior_matched_rows(rows)
        fused_names += [name + PRIOR_MATCHED for name in [*args.methods, *fused_names]]
    table = markdown_table(rows, [*args.methods, *fused_names], args.pairs)
    summary = gain_summary(rows, [*args.methods, *fused_names], args.pairs)
    if summary:
        table += f"\n\nPer model, over the blocks where every model has a row:\n\n{summary}"
    blocks = block_gains(rows, [*args.methods, *fused_names], args.pairs)
    if blocks:
        table += f"\n\nPer block, the difference to its source-only run (points):\n\n{blocks}"
    validators = validator_table(rows, [*args.methods, *fused_names], args.pairs)
    if validators:
        table += ("\n\nLabel-free validators, mean over the blocks where every method has run (higher is better):"
                  f"\n\n{validators}")
    if args.multi_source_pairs:
        table += "\n\nMulti-source (two domains -> the third):\n\n" + markdown_table(
            rows, [*multi_methods, *fused_names], args.multi_source_pairs)
    table_path.parent.mkdir(parents=True, exist_ok=True)
    table_path.write_text(f"Budget: {json.dumps(budget)}; recipe {Path(args.recipe).name}\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    sys.exit(main())
