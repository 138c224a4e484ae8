"""Wall time of a run with its source-only baseline trained side by side (a second process, half the threads each)
against the same run trained one after the other, in one process, alternating.

Books -> electronics of the shipped reviews, the packaged all-MiniLM-L6-v2, ``--steps`` optimizer steps of the
baseline and of ``--method`` (batches of 32 at 128 tokens by default, no evaluation during training, the final
evaluation on source validation and the 2,000 target reviews, both models saved), ``mixed_precision="auto"``.
Each round times :func:`~hfadapt.evaluation.experiment.compare_with_source_only` both ways, in a new order each
round; the ratio side by side / one after the other is taken within a round, so slow phases of a noisy machine hit
both. Prints and writes the times and the median and range of the ratios.

    python benchmarks/side_by_side_cost.py                         # about 8 min on 2 cores
    python benchmarks/side_by_side_cost.py --method self_training --steps 20 --rounds 1
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer

from hfadapt import AdaptConfig, DataArguments
from hfadapt.benchmarking.timing import run_header, write_results
from hfadapt.cli.runner import text_model_factory
from hfadapt.data.loading import load_transfer_splits
from hfadapt.data.text import tokenize_splits
from hfadapt.evaluation.experiment import compare_with_source_only
from hfadapt.utils.offline_models import packaged_minilm_path
from hfadapt.utils.runtime import use_available_cpu_threads

REPO = Path(__file__).resolve().parents[1]
WAYS = {"one after the other": False, "side by side": True}


def time_run(side_by_side: bool, make_model, splits, tokenizer, method: str, steps: int, batch_size: int) -> float:
    """Seconds for the baseline and ``method`` (``steps`` optimizer steps each), trained and saved."""
    with tempfile.TemporaryDirectory() as out:
        config = AdaptConfig(output_dir=out, method=method, max_steps=steps, per_device_train_batch_size=batch_size,
                             train_sampling_strategy="group_by_length", learning_rate=5e-5, warmup_steps=0.1,
                             mixed_precision="auto", logging_steps=10, save_strategy="no", report_to="none",
                             disable_tqdm=True, seed=42)
        start = time.perf_counter()
        compare_with_source_only(make_model, config, splits, processing_class=tokenizer, side_by_side=side_by_side)
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """Time both ways over the rounds; print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="adamatch")
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps of each run")
    parser.add_argument("--batch_size", type=int, default=32, help="rows per step, source + target")
    parser.add_argument("--max_length", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "side_by_side_cost.json"))
    args = parser.parse_args(argv)
    threads = use_available_cpu_threads()
    data = DataArguments(dataset_name="demo:amazon-msd", domain_column_name="domain", source="books",
                         target="electronics", max_length=args.max_length)
    tokenizer = AutoTokenizer.from_pretrained(packaged_minilm_path())
    splits = tokenize_splits(load_transfer_splits(data, seed=42), tokenizer, data.text_columns, data.max_length)
    make_model = text_model_factory(str(packaged_minilm_path()), splits.label_names)
    times = {way: [] for way in WAYS}
    order = random.Random(0)
    for _ in range(args.rounds):
        for way in order.sample(list(WAYS), len(WAYS)):
            times[way].append(time_run(WAYS[way], make_model, splits, tokenizer, args.method, args.steps,
                                       args.batch_size))
    ratios = [s / o for s, o in zip(times["side by side"], times["one after the other"], strict=True)]
    report = {**run_header("side_by_side_cost.py", argv if argv is not None else sys.argv[1:]),
              "threads": threads, "torch_threads_after": torch.get_num_threads(), "method": args.method,
              "steps": args.steps, "seconds": times, "ratios": ratios}
    lines = [f"source-only and {args.method}, {args.steps} steps each, batch {args.batch_size}, {args.max_length} "
             f"tokens, {threads} threads: seconds for both runs (median over {args.rounds} rounds), and the ratio to "
             "one after the other in the same round (median and range)",
             "| way | seconds | ratio | range |", "|---|---:|---:|---:|",
             f"| one after the other | {statistics.median(times['one after the other']):.1f} | 1.000 | — |",
             f"| side by side | {statistics.median(times['side by side']):.1f} | {statistics.median(ratios):.3f} | "
             f"{min(ratios):.3f} - {max(ratios):.3f} |"]
    text = "\n".join(lines)
    print(text)
    write_results(args.output, report, text)


if __name__ == "__main__":
    main()
