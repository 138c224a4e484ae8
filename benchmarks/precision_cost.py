"""What bf16 autocast saves per optimizer step against fp32, in one process, side by side.

With the packaged all-MiniLM-L6-v2 and batches of ``--batch_size`` rows (source + target) at ``--length`` tokens,
times optimizer steps (median after ``--warmup`` steps) of each method in ``--methods`` at ``mixed_precision="no"``
(fp32, the baseline, ratio 1.00) and ``mixed_precision="bf16"``, repeating the whole round ``--rounds`` times in a
new order each round. Each bf16 time is divided by the same method's fp32 time *in the same round*, so slow phases
of a noisy machine hit both; the median and range of these ratios over rounds are reported, with whether this
machine has native bf16 (:func:`hfadapt.utils.precision.native_bf16`), which ``mixed_precision="auto"`` follows.

    python benchmarks/precision_cost.py                                  # about 10 min on 2 cores
    python benchmarks/precision_cost.py --methods none --rounds 2 --steps 4
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
from pathlib import Path

from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hfadapt import AdaptConfig, AdaptTrainer
from hfadapt.benchmarking.timing import StepTimer, args_for, run_header, token_rows, write_results
from hfadapt.utils.offline_models import packaged_minilm_path
from hfadapt.utils.precision import native_bf16
from hfadapt.utils.runtime import use_available_cpu_threads

REPO = Path(__file__).resolve().parents[1]
PRECISIONS = ("no", "bf16")


def time_steps(method: str, precision: str, model_path: str, length: int, batch_size: int, steps: int,
               warmup: int) -> float:
    """Median seconds per optimizer step (after ``warmup`` steps) of ``method`` at ``mixed_precision=precision``."""
    n = batch_size * (steps + warmup)
    timer = StepTimer()
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    tokenizer = AutoTokenizer.from_pretrained(model_path)  # UDALM and the consistency methods read its special tokens
    with tempfile.TemporaryDirectory() as out:
        config = args_for(AdaptConfig, out, batch_size, steps + warmup, method=method, mixed_precision=precision)
        trainer = AdaptTrainer(model, config, train_dataset=token_rows(n, length, seed=1),
                               target_dataset=token_rows(n, length, seed=2, labels=False), processing_class=tokenizer,
                               callbacks=[timer])
        trainer.train()
    return statistics.median(timer.times[warmup:])


def main(argv: list[str] | None = None) -> None:
    """Time every method at both precisions over the rounds; print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=32, help="rows per step, source + target")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per configuration and round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=["none", "self_training", "dann"])
    parser.add_argument("--model_name_or_path", default=None)
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "precision_cost.json"))
    args = parser.parse_args(argv)
    use_available_cpu_threads()
    model_path = str(args.model_name_or_path or packaged_minilm_path())
    configs = [(m, p) for m in args.methods for p in PRECISIONS]
    times = {c: [] for c in configs}
    order = random.Random(0)
    for _ in range(args.rounds):
        for method, precision in order.sample(configs, len(configs)):  # a new order each round
            times[method, precision].append(
                time_steps(method, precision, model_path, args.length, args.batch_size, args.steps, args.warmup))
    report = {**run_header("precision_cost.py", argv if argv is not None else sys.argv[1:]),
              "native_bf16": native_bf16(), "length": args.length, "batch_size": args.batch_size,
              "seconds": {f"{m} {p}": v for (m, p), v in times.items()}}
    lines = [f"length {args.length}, batch {args.batch_size}, native bf16: {report['native_bf16']}: seconds per step "
             f"(median over {args.rounds} rounds), and bf16's ratio to fp32 in the same round (median and range)",
             "| method | fp32 s / step | bf16 s / step | bf16 / fp32 | range |", "|---|---:|---:|---:|---:|"]
    for method in args.methods:
        ratios = [b / f for b, f in zip(times[method, "bf16"], times[method, "no"], strict=True)]
        lines.append(f"| {method} | {statistics.median(times[method, 'no']):.3f} | "
                     f"{statistics.median(times[method, 'bf16']):.3f} | {statistics.median(ratios):.3f} | "
                     f"{min(ratios):.3f} - {max(ratios):.3f} |")
    text = "\n".join(lines)
    print(text)
    write_results(args.output, report, text)


if __name__ == "__main__":
    main()
