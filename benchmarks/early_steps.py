"""The first steps of one sentiment-benchmark run again, with every loss component logged often: what the grid's
rows (which log every 1,000 steps) do not show, e.g. why a run never learnt the source task.

Every flag but ``--pair``, ``--seed``, ``--method``, ``--steps`` and ``--logging_steps`` is
``sentiment_benchmark.py``'s, parsed by it: pass the grid's own, and the run is built as the grid built it (the same
recipe, data, budget, pair split, seed and model), so its first steps are the grid's; with the grid's
``--tapt_cache_dir`` its store gives TAPT's result. Source validation is scored every ``--eval_steps`` as in the
grid, so its accuracies can be checked against the row's ``source_val_curve``. Prints one JSON line per logging
step: the task loss, each method's loss, weight and metrics (AdaMatch's ``adamatch_mask_rate`` and
``adamatch_threshold``), and the evaluations.

    # a run of the converged grid (benchmarks/README.md): its flags, then the run and how far to go
    python benchmarks/early_steps.py --max_length 128 --max_steps 600 --eval_steps 50 \\
        --early_stopping_patience 3 --min_steps 300 --train_sampling_strategy group_by_length \\
        --tapt_cache_dir <the grid's store> --pair dvd:electronics --seed 2 --method adamatch:tapt_steps=250 --steps 60
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import sentiment_benchmark
from transformers import AutoTokenizer, TrainerCallback, set_seed

from hfadapt import AdaptTrainer
from hfadapt.benchmarking.fusion import model_factory
from hfadapt.benchmarking.pairs import tokenised_pair
from hfadapt.evaluation.metrics import classification_metrics
from hfadapt.evaluation.run_files import SOURCE_EVAL
from hfadapt.trainer.pretraining import pretrain_on_target
from hfadapt.utils.offline_models import packaged_minilm_path
from hfadapt.utils.runtime import use_available_cpu_threads


class StopAfter(TrainerCallback):
    """Ends training after ``steps`` optimizer steps (the schedules still read the run's ``max_steps``)."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.steps:
            control.should_training_stop = True


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, argparse.Namespace]:
    """The run to repeat (pair, seed, method spec) and how far and how often to log; then every other flag as
    ``sentiment_benchmark.parse`` reads it (the grid's recipe, data and budget, its defaults where not given).
    argparse exits with a message on a missing, unknown or malformed flag."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", required=True, help="source:target, e.g. dvd:electronics")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--method", required=True, help="a benchmark method spec, e.g. adamatch:tapt_steps=250")
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps to run")
    parser.add_argument("--logging_steps", type=int, default=5)
    own, rest = parser.parse_known_args(argv)
    return own, sentiment_benchmark.parse(rest)


def main(argv: list[str] | None = None) -> None:
    """Run ``--steps`` steps of the run and print its logs."""
    args, grid = parse(argv)
    use_available_cpu_threads()
    scratch = tempfile.mkdtemp(prefix="hfadapt-early-")
    data, base = sentiment_benchmark.grid_setup(grid, scratch)
    model_path = grid.model_name_or_path or packaged_minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    splits = tokenised_pair(data, args.pair, args.seed, tokenizer)
    grid_config = sentiment_benchmark.run_config(base, grid, args.method, args.seed, Path(scratch) / "run")
    # as the grid's run trains, without checkpoints, early stopping or label-free scores (none draws a random number)
    config = dataclasses.replace(grid_config, logging_steps=args.logging_steps,
                                 save_strategy="no", load_best_model_at_end=False, early_stopping_patience=0,
                                 metric_for_best_model=None, label_free_validators=[])
    set_seed(config.seed)
    model = model_factory(model_path, splits)()
    tapt_loss = None
    if config.tapt_steps:  # TAPT logged as the grid's run logged it, so that the grid's store holds its result
        tapt_loss = pretrain_on_target(model, splits.target_train, tokenizer, grid_config)
        config = dataclasses.replace(config, tapt_steps=0)  # it draws no random number the run would have drawn
    trainer = AdaptTrainer(model, config, train_dataset=splits.source_train,
                           target_dataset=splits.target_train, eval_dataset={SOURCE_EVAL: splits.source_val},
                           processing_class=tokenizer, compute_metrics=classification_metrics,
                           callbacks=[StopAfter(args.steps)])
    trainer.train()
    if tapt_loss is not None:
        print(json.dumps({"tapt_loss": tapt_loss}))
    for log in trainer.state.log_history:
        print(json.dumps({k: v for k, v in log.items() if k.startswith(("loss", "eval_source_val_accuracy"))
                          or k in ("step", "grad_norm", "learning_rate") or "_weight" in k or "adamatch" in k}))


if __name__ == "__main__":
    main()
