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

import datasets
import torch
from report_files import run_header, write_results  # noqa: E402
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from hfadapt import ALIGNMENT_METHODS, AdaptConfig, AdaptTrainer
from hfadapt.methods.mmd import multi_kernel_mmd
from hfadapt.offline_models import packaged_minilm_path
from hfadapt.runtime import use_available_cpu_threads

REPO = Path(__file__).resolve().parents[1]
PLAIN, SOURCE_ONLY = "plain Trainer", "none"


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step (``on_step_begin`` to ``on_step_end``), in seconds."""

    def __init__(self):
        self.times: list[float] = []
        self._start = None

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._start)


def token_rows(n: int, length: int, seed: int, labels: bool = True) -> datasets.Dataset:
    """``n`` rows of random token ids at exactly ``length`` tokens (fixed shapes: timing, not accuracy)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 20000, (n, length), generator=g)
    row = {"input_ids": ids.tolist(), "attention_mask": [[1] * length] * n}
    if labels:
        row["label"] = torch.randint(0, 2, (n,), generator=g).tolist()
    return datasets.Dataset.from_dict(row)


def args_for(config_cls, out: str, batch_size: int, steps: int, **extra):
    """``TrainingArguments`` or ``AdaptConfig`` for a timed CPU run of ``steps`` steps: no saving, logging or eval."""
    return config_cls(output_dir=out, per_device_train_batch_size=batch_size, max_steps=steps, learning_rate=5e-5,
                      report_to="none", disable_tqdm=True, save_strategy="no", logging_steps=10_000, use_cpu=True,
                      dataloader_pin_memory=False, seed=0, **extra)


def time_steps(method: str, model_path: str, length: int, batch_size: int, steps: int, warmup: int) -> float:
    """Median seconds per optimizer step (after ``warmup`` steps) of one configuration."""
    n = batch_size * (steps + warmup)
    timer = StepTimer()
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    with tempfile.TemporaryDirectory() as out:
        if method == PLAIN:
            trainer = Trainer(model, args_for(TrainingArguments, out, batch_size, steps + warmup),
                              train_dataset=token_rows(n, length, seed=1), callbacks=[timer])
        else:
            # UDALM masks tokens with the tokenizer's [MASK]; the others take the rows as they are,
            # as plain Trainer does
            tokenizer = AutoTokenizer.from_pretrained(model_path) if "udalm" in method else None
            trainer = AdaptTrainer(model, args_for(AdaptConfig, out, batch_size, steps + warmup, method=method),
                                   train_dataset=token_rows(n, length, seed=1),
                                   target_dataset=token_rows(n, length, seed=2, labels=False),
                                   processing_class=tokenizer, callbacks=[timer])
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
    code = f"""
import ctypes, json, os, tempfile, threading, time, sys
sys.path.insert(0, {str(REPO / "benchmarks")!r})
from step_cost import token_rows, args_for
from transformers import AutoModelForSequenceClassification
from hfadapt import AdaptConfig, AdaptTrainer
page = os.sysconf("SC_PAGE_SIZE")
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                                                "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
def allocated():
    info = libc.mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page / 2**20
model = AutoModelForSequenceClassification.from_pretrained({model_path!r}, num_labels=2)
with tempfile.TemporaryDirectory() as out:
    extra = dict(use_peft=True, lora_target_modules=["query", "value"]) if {lora} else {{}}
    t = AdaptTrainer(model, args_for(AdaptConfig, out, {batch_size}, 3, method="dann", **extra),
                     train_dataset=token_rows({batch_size * 3}, {length}, 1),
                     target_dataset=token_rows({batch_size * 3}, {length}, 2, labels=False))
    params = list(t.adapt_model.task_model.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad) / sum(p.numel() for p in params)
    before = (allocated(), rss())
    peak, running = [0.0, 0.0], [True]
    def sample():
        while running[0]:
            peak[0], peak[1] = max(peak[0], allocated()), max(peak[1], rss())
            time.sleep(0.005)
    thread = threading.Thread(target=sample)
    thread.start()
    t.train()
    running[0] = False
    thread.join()
print(json.dumps({{"allocated_peak_mib": peak[0] - before[0], "rss_peak_mib": peak[1] - before[1],
                  "trainable_fraction": trainable}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", nargs="+", type=int, default=[128, 256])
    parser.add_argument("--batch_size", type=int, default=32, help="rows per step, source + target")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per configuration and round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=sorted(ALIGNMENT_METHODS))
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
