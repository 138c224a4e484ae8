"""What the speed benchmarks (``benchmarks/step_cost.py``, ``benchmarks/throughput.py``) share: timed steps, fixed-
shape token data, the arguments of a timed CPU run, and where their results go (``<output>.json`` and a
``<output>.md`` that names the run)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import datasets
import torch
from transformers import TrainerCallback


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step (``on_step_begin`` to ``on_step_end``), in seconds."""

    def __init__(self):
        self.times: list[float] = []
        self._start = None

    def on_step_begin(self, args, state, control, **kwargs):
        """Start the clock of this step."""
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        """Record the seconds since this step began."""
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
    """``TrainingArguments`` or ``AdaptConfig`` (``config_cls``) for a timed CPU run of ``steps`` steps: no saving,
    logging or evaluation; ``extra`` sets further fields."""
    return config_cls(output_dir=out, per_device_train_batch_size=batch_size, max_steps=steps, learning_rate=5e-5,
                      report_to="none", disable_tqdm=True, save_strategy="no", logging_steps=10_000, use_cpu=True,
                      dataloader_pin_memory=False, seed=0, **extra)


def run_header(script: str, argv: list[str]) -> dict:
    """``date`` and ``machine`` (threads, torch version) of this run, and the ``command`` that made it."""
    return {"date": time.strftime("%Y-%m-%d"),
            "machine": f"{torch.get_num_threads()} threads, torch {torch.__version__}",
            "command": f"python benchmarks/{script} {' '.join(argv)}".rstrip()}


def write_results(output: str | Path, report: dict, text: str) -> None:
    """Write ``report`` (with the keys of :func:`run_header`) as JSON to ``output`` and ``text`` (the printed tables)
    to ``output`` with the ``.md`` suffix, under a line saying when, where and how they were made.

    Raises:
        OSError: if the files cannot be written.
    """
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=1))
    output.with_suffix(".md").write_text(f"{report['date']}, {report['machine']}: `{report['command']}`\n{text}\n")
