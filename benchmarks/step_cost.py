"""What adaptation costs per optimizer step, against plain fine-tuning, in one process, side by side.

For each sequence length, with the packaged all-MiniLM-L6-v2 and batches of ``--batch_size`` rows (source + target),
times optimizer steps (median after ``--warmup`` steps) of

  (a) plain ``transformers.Trainer`` fine-tuning on batches of the same size (the baseline, ratio 1.00),
  (b) hfadapt source-only (``method="none"``, the target half forwarded too, as the paired baseline does),
  (c) hfadapt with each alignment method,

repeating the whole round ``--rounds`` times, each round in a new order. Each configuration's ratio is taken to the
plain Trainer's time *in the same round* (slow phases of a noisy machine hit both), and the median and range of
these ratios over rounds are reported. Then, each in a fresh subprocess, the peak memory a few training steps add,
full fine-tuning vs LoRA (allocator bytes in use, the CPU counterpart of ``torch.cuda.max_memory_allocated``, and
resident memory), and the trainable fraction of the parameters. Last, the cost of the MK-MMD head alone, quadratic
vs linear-time estimator, for 32 to 1,024 feature rows, next to the encoder step.

    python benchmarks/step_cost.py                        # lengths 128 and 256 (about 35 min on 2 cores)
    python benchmarks/step_cost.py --lengths 64 --steps 4 --methods dann mmd
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

from hfadapt import ALIGNMENT_METHODS, AdaptConfig, AdaptTrainer
from hfadapt.benchmarking.timing import StepTimer, args_for, run_header, token_rows, write_results
from hfadapt.methods.mmd import multi_kernel_mmd
from hfadapt.utils.offline_models import packaged_minilm_path
from hfadapt.utils.runtime import use_available_cpu_threads

REPO = Path(__file__).resolve().parents[1]
PEAK_MEMORY_CHILD = Path(__file__).resolve().parent / "_peak_memory_child.py"
PLAIN, SOURCE_ONLY = "plain Trainer", "none"


def time_steps(method: str, model_path: str, length: int, batch_size: int, steps: int, warmup: int) -> float:
    """Median seconds per optimizer step (after ``warmup`` steps) of one configuration (``<method>/joint``: the
    method with the target rows in the source rows' forward, with gradient, whether it needs one or not)."""
    method, _, variant = method.partition("/")
    n = batch_size * (steps + warmup)
    timer = StepTimer()
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    # every configuration gets the tokenizer (so the same collator): UDALM and the consistency methods need it
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    with tempfile.TemporaryDirectory() as out:
        if method == PLAIN:
            trainer = Trainer(model, args_for(TrainingArguments, out, batch_size, steps + warmup),
                              train_dataset=token_rows(n, length, seed=1), processing_class=tokenizer,
                              callbacks=[timer])
        else:
            trainer = AdaptTrainer(model, args_for(AdaptConfig, out, batch_size, steps + warmup, method=method),
                                   train_dataset=token_rows(n, length, seed=1),
                                   target_dataset=token_rows(n, length, seed=2, labels=False),
                                   processing_class=tokenizer, callbacks=[timer])
            trainer.adapt_model.target_rows_apart &= variant != "joint"
        trainer.train()
    return statistics.median(timer.times[warmup:])


def peak_memory(model_path: str, length: int, batch_size: int, lora: bool) -> dict:
    """In a fresh process, a few DANN steps, full or LoRA: what training adds to the memory held before it (model
    and data loaded), in MiB, sampled every 5 ms, two ways:

    - ``allocated_peak_mib``: bytes the C allocator has handed out and not taken back (glibc ``mallinfo2``: small
      blocks + mmapped blocks), the CPU counterpart of ``torch.cuda.max_memory_allocated``: tensors, activations,
      gradients and optimizer state;
    - ``rss_peak_mib``: resident memory (``/proc/self/statm``), which also holds freed pages the allocator keeps.

    Plus the trainable fraction of the task model's parameters. The process's own high-water mark would be set by
    loading the checkpoint, the same for both."""
    argv = [sys.executable, str(PEAK_MEMORY_CHILD), model_path, str(length), str(batch_size),
            "lora" if lora else "full"]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def mmd_head_cost(rows: list[int], dim: int = 384, repeats: int = 20) -> dict[int, dict[str, float]]:
    """Median seconds of forward + backward of the MK-MMD loss on ``(B, dim)`` features (half source, half target),
    per estimator and batch size ``B``."""
    costs = {}
    for b in rows:
        costs[b] = {}
        for estimator in ("unbiased", "linear"):
            times = []
            for _ in range(repeats):
                x = torch.randn(b, dim, requires_grad=True)
                start = time.perf_counter()
                multi_kernel_mmd(x[: b // 2], x[b // 2:], estimator=estimator).backward()
                times.append(time.perf_counter() - start)
            costs[b][estimator] = statistics.median(times)
    return costs


def main(argv: list[str] | None = None) -> None:
    """Time every configuration at every length, measure memory and the MK-MMD head; print and write the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", nargs="+", type=int, default=[128, 256])
    parser.add_argument("--batch_size", type=int, default=32, help="rows per step, source + target")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per configuration and round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=sorted(ALIGNMENT_METHODS),
                        help="methods to time; <method>/joint forwards the target rows with the source rows' gradient "
                             "(AdaptModel.target_rows_apart off)")
    parser.add_argument("--model_name_or_path", default=None)
    parser.add_argument("--mmd_rows", nargs="+", type=int, default=[32, 64, 128, 256, 512, 1024])
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "step_cost.json"))
    args = parser.parse_args(argv)
    use_available_cpu_threads()
    model_path = str(args.model_name_or_path or packaged_minilm_path())
    configs = [PLAIN, SOURCE_ONLY, *args.methods]
    report = {**run_header("step_cost.py", argv if argv is not None else sys.argv[1:]),
              "batch_size": args.batch_size, "steps": {}, "memory": {}}
    lines = []
    order = random.Random(0)
    for length in args.lengths:
        medians = {c: [] for c in configs}
        for _ in range(args.rounds):
            for config in order.sample(configs, len(configs)):  # a new order each round: no configuration always first
                medians[config].append(time_steps(config, model_path, length, args.batch_size, args.steps, args.warmup))
        step = {c: statistics.median(v) for c, v in medians.items()}
        ratios = {c: [t / b for t, b in zip(v, medians[PLAIN], strict=True)] for c, v in medians.items()}
        report["steps"][length] = step
        report.setdefault("ratios", {})[length] = ratios
        lines += [f"\nlength {length}, batch {args.batch_size}: seconds per step, and its ratio to the plain Trainer's "
                  f"in the same round (median and range over {args.rounds} rounds)",
                  "| configuration | s / step | ratio | range |", "|---|---:|---:|---:|"]
        lines += [f"| {c} | {step[c]:.3f} | {statistics.median(ratios[c]):.3f} | {min(ratios[c]):.3f} - "
                  f"{max(ratios[c]):.3f} |" for c in configs]
    length = args.lengths[0]
    for lora in (False, True):
        report["memory"]["lora" if lora else "full"] = peak_memory(model_path, length, args.batch_size, lora)
    full, lora = report["memory"]["full"], report["memory"]["lora"]
    lines += [f"\nPeak memory training adds to the loaded model, 3 DANN steps at length {length}, "
              f"batch {args.batch_size}",
              "| | trainable | allocated peak MiB | RSS peak MiB |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {100 * m['trainable_fraction']:.2f}% | {m['allocated_peak_mib']:.0f} | "
              f"{m['rss_peak_mib']:.0f} |"
              for name, m in (("full fine-tuning", full), ("LoRA r=8, query/value", lora))]
    lines += [f"| LoRA / full | | {lora['allocated_peak_mib'] / full['allocated_peak_mib']:.3f} | "
              f"{lora['rss_peak_mib'] / full['rss_peak_mib']:.3f} |"]
    report["mmd_head"] = mmd_head_cost(args.mmd_rows)
    encoder = report["steps"][length][SOURCE_ONLY]
    lines += [f"\nMK-MMD head (forward + backward, 384-d features) vs the encoder step "
              f"({encoder:.3f} s at length {length})",
              "| rows | quadratic s | linear s | quadratic / step | linear / step |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {b} | {c['unbiased']:.5f} | {c['linear']:.5f} | {c['unbiased'] / encoder:.4f} | "
              f"{c['linear'] / encoder:.4f} |"
              for b, c in report["mmd_head"].items()]
    text = "\n".join(lines)
    print(text)
    write_results(args.output, report, text)


if __name__ == "__main__":
    main()
