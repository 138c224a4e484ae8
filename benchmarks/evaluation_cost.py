"""What label-free validators add to a run that evaluates periodically, against its training steps, in one process.

With the packaged all-MiniLM-L6-v2, batches of ``--batch_size`` rows (source + target) at ``--length`` tokens and
the run's precision, times, side by side in each round:

  (a) an optimizer step of the source-only run (median after ``--warmup`` steps),
  (b) a source-validation evaluation of ``--source_rows`` rows (``Trainer.evaluate``, what early stopping reads),
  (c) one scoring of ``--validators`` over ``--source_rows`` source-validation and ``--target_rows`` target rows
      (``LabelFreeValidation.scores``: what ``label_free_strategy="every_eval"`` adds to each evaluation).

(b) and (c) are reported in optimizer steps of the same round, and the share of a run's time that (c) takes at
``--eval_steps`` steps between evaluations: ``c / (eval_steps * a + b + c)``, what ``label_free_strategy="end"``
saves (it scores the final model once, as every run does). Median and range over ``--rounds`` rounds.

    python benchmarks/evaluation_cost.py                       # the CPU grid's settings (about 10 min on 2 cores)
    python benchmarks/evaluation_cost.py --rounds 1 --steps 3 --target_rows 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hfadapt import AdaptConfig, AdaptTrainer, LabelFreeValidationCallback
from hfadapt.benchmarking.timing import StepTimer, args_for, run_header, token_rows, write_results
from hfadapt.evaluation.metrics import classification_metrics
from hfadapt.utils.offline_models import packaged_minilm_path
from hfadapt.utils.precision import resolve_bf16
from hfadapt.utils.runtime import use_available_cpu_threads

REPO = Path(__file__).resolve().parents[1]


def one_round(args, model_path: str, bf16: bool) -> dict[str, float]:
    """Seconds of (a) a step, (b) an evaluation and (c) a scoring of one fresh trainer, after its timed steps."""
    timer = StepTimer()
    n = args.batch_size * (args.steps + args.warmup)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    with tempfile.TemporaryDirectory() as out:
        config = args_for(AdaptConfig, out, args.batch_size, args.steps + args.warmup, method="none", bf16=bf16,
                          per_device_eval_batch_size=args.batch_size, label_free_validators=args.validators,
                          label_free_max_rows=max(args.source_rows, args.target_rows))
        trainer = AdaptTrainer(model, config, train_dataset=token_rows(n, args.length, seed=1),
                               target_dataset=token_rows(args.target_rows, args.length, seed=2, labels=False),
                               eval_dataset={"source_val": token_rows(args.source_rows, args.length, seed=3)},
                               processing_class=AutoTokenizer.from_pretrained(model_path),
                               compute_metrics=classification_metrics, callbacks=[timer])
        trainer.train()
        trainer.remove_callback(LabelFreeValidationCallback)  # (b) alone
        start = time.perf_counter()
        trainer.evaluate()
        evaluation = time.perf_counter() - start
        start = time.perf_counter()
        trainer.label_free.scores(trainer.adapt_model)
        scoring = time.perf_counter() - start
    return {"step": statistics.median(timer.times[args.warmup:]), "evaluation": evaluation, "scoring": scoring}


def main(argv: list[str] | None = None) -> None:
    """Time the rounds; print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=32, help="rows per step, source + target")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--source_rows", type=int, default=400, help="source-validation rows (the grid's 400)")
    parser.add_argument("--target_rows", type=int, default=1000, help="target rows a scoring reads (the grid's 1,000)")
    parser.add_argument("--validators", nargs="+", default=["dev"])
    parser.add_argument("--eval_steps", type=int, default=50, help="optimizer steps between evaluations")
    parser.add_argument("--mixed_precision", default="auto", help="as AdaptConfig's: auto, bf16 or no")
    parser.add_argument("--model_name_or_path", default=None)
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "evaluation_cost.json"))
    args = parser.parse_args(argv)
    use_available_cpu_threads()
    model_path = str(args.model_name_or_path or packaged_minilm_path())
    bf16 = resolve_bf16(args.mixed_precision)
    rounds = [one_round(args, model_path, bf16) for _ in range(args.rounds)]
    in_steps = {k: [r[k] / r["step"] for r in rounds] for k in ("evaluation", "scoring")}
    shares = [r["scoring"] / (args.eval_steps * r["step"] + r["evaluation"] + r["scoring"]) for r in rounds]

    def cell(values: list[float], fmt: str) -> str:
        return f"{statistics.median(values):{fmt}} ({min(values):{fmt}} - {max(values):{fmt}})"

    lines = [f"\nlength {args.length}, batch {args.batch_size}, {'bf16' if bf16 else 'fp32'} training; "
             f"median (range) over {args.rounds} rounds",
             "| | seconds | in optimizer steps |", "|---|---:|---:|",
             f"| (a) optimizer step, source-only | {cell([r['step'] for r in rounds], '.3f')} | 1 |",
             f"| (b) evaluation, {args.source_rows} source-validation rows | "
             f"{cell([r['evaluation'] for r in rounds], '.2f')} | {cell(in_steps['evaluation'], '.1f')} |",
             f"| (c) scoring {'+'.join(args.validators)}, {args.source_rows} + {args.target_rows} rows | "
             f"{cell([r['scoring'] for r in rounds], '.2f')} | {cell(in_steps['scoring'], '.1f')} |",
             f"\nShare of a run's time in (c) at {args.eval_steps} steps between evaluations, which "
             f"label_free_strategy='end' saves: {cell([100 * s for s in shares], '.1f')} %"]
    text = "\n".join(lines)
    print(text)
    report = {**run_header("evaluation_cost.py", argv if argv is not None else sys.argv[1:]), "rounds": rounds,
              "steps_per_evaluation": in_steps, "share_saved": shares}
    write_results(args.output, report, text)


if __name__ == "__main__":
    main()
