"""Child process of ``step_cost.py``: the memory a few DANN training steps add, full fine-tuning or LoRA.

    python benchmarks/_peak_memory_child.py MODEL LENGTH BATCH_SIZE {full,lora}

Prints one JSON line: ``allocated_peak_mib`` and ``rss_peak_mib`` (what training adds to the memory held once the
model and data are loaded, sampled every 5 ms) and ``trainable_fraction``. A fresh process, so that nothing an
earlier measurement left in the allocator counts.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import tempfile
import threading
import time

from transformers import AutoModelForSequenceClassification

from hfadapt import AdaptConfig, AdaptTrainer
from hfadapt.benchmarking.timing import args_for, token_rows

PAGE = os.sysconf("SC_PAGE_SIZE")


class MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2``."""

    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                                                "uordblks", "fordblks", "keepcost")]


libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2


def allocated() -> float:
    """MiB the C allocator has handed out and not taken back (small blocks + mmapped blocks)."""
    info = libc.mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20


def rss() -> float:
    """Resident memory of this process in MiB (``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def main(argv: list[str] | None = None) -> None:
    """Train 3 DANN steps, full or LoRA, sampling memory meanwhile; print the peaks above the memory before."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("length", type=int)
    parser.add_argument("batch_size", type=int)
    parser.add_argument("tuning", choices=["full", "lora"])
    args = parser.parse_args(argv)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2)
    with tempfile.TemporaryDirectory() as out:
        extra = dict(use_peft=True, lora_target_modules=["query", "value"]) if args.tuning == "lora" else {}
        t = AdaptTrainer(model, args_for(AdaptConfig, out, args.batch_size, 3, method="dann", **extra),
                         train_dataset=token_rows(args.batch_size * 3, args.length, 1),
                         target_dataset=token_rows(args.batch_size * 3, args.length, 2, labels=False))
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
    print(json.dumps({"allocated_peak_mib": peak[0] - before[0], "rss_peak_mib": peak[1] - before[1],
                      "trainable_fraction": trainable}))


if __name__ == "__main__":
    main()
