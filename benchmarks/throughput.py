"""Throughput of the default sentiment run on CPU: tokens per second, before and after length-aware batching.

The default recipe (``hfadapt/cli/recipes/sentiment_transfer.yaml``: books -> electronics, the packaged
all-MiniLM-L6-v2, 128 tokens, batches of 32 rows = 16 source + 16 target, DANN) on the real reviews, three input
pipelines timed side by side in one process, alternating in rounds:

  (a) static padding: every review padded to ``max_length`` (a pipeline without dynamic padding),
  (b) dynamic padding to each batch's longest review, batches drawn at random (hfadapt before length grouping:
      ``train_sampling_strategy="random"``),
  (c) dynamic padding with length-grouped batches that keep the source/target proportion
      (``train_sampling_strategy="group_by_length"``).

For training it reports real (non-padding) tokens per second over the timed steps and the padded tokens per step,
each as a ratio to (b). For evaluation (the target test set, no gradient), reviews per second at the training batch
size and at the recipe's evaluation batch size (128), in the order Trainer reads them (sequential for random, length
groups for group_by_length). Last, the cost of tokenising the splits the first time and again in a fresh process
(``datasets`` caches the mapped splits by fingerprint).

    python benchmarks/throughput.py                    # about 10 min on 2 cores
    python benchmarks/throughput.py --steps 4 --rounds 1 --eval_rows 64
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hfadapt import AdaptConfig, AdaptTrainer
from hfadapt.benchmarking.timing import StepTimer, run_header, write_results
from hfadapt.cli.args import parse_with_config
from hfadapt.cli.recipes import recipe_path
from hfadapt.data import DataArguments, load_transfer_splits, tokenize_splits
from hfadapt.utils.offline_models import packaged_minilm_path
from hfadapt.utils.runtime import use_available_cpu_threads

REPO = Path(__file__).resolve().parents[1]
TOKENISE_CHILD = Path(__file__).resolve().parent / "_tokenise_child.py"

PIPELINES = {
    "static padding": ("max_length", "random"),
    "dynamic padding, random batches": (False, "random"),
    "dynamic padding, length-grouped batches": (False, "group_by_length"),
}
"""Name -> (tokenizer ``padding``, ``train_sampling_strategy``)."""
BEFORE = "dynamic padding, random batches"

def train_tokens_per_second(trainer: AdaptTrainer, warmup: int) -> dict:
    """Train ``trainer`` (a :class:`StepTimer` among its callbacks) and count the tokens of the batches it reads."""
    batches = list(trainer.get_train_dataloader())[: trainer.args.max_steps]  # the same seeded order train() reads
    timer = next(c for c in trainer.callback_handler.callbacks if isinstance(c, StepTimer))
    trainer.train()
    timed = batches[warmup:]
    seconds = sum(timer.times[warmup:])
    real = sum(int(b["attention_mask"].sum()) for b in timed)
    padded = sum(b["input_ids"].numel() for b in timed)
    return {"tokens_per_s": real / seconds, "padded_tokens_per_step": padded / len(timed),
            "real_tokens_per_step": real / len(timed), "s_per_step": seconds / len(timed)}


def eval_rows_per_second(trainer: AdaptTrainer, dataset, batch_size: int) -> float:
    """Reviews per second of a forward pass over ``dataset`` through the trainer's evaluation dataloader."""
    trainer.args.per_device_eval_batch_size = batch_size
    trainer._eval_dataloaders = {}  # Trainer caches its loaders: rebuild at this batch size
    loader = trainer.get_eval_dataloader(dataset)
    model = trainer.adapt_model.task_model.eval()
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in loader:
            model(**{k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")})
    return len(dataset) / (time.perf_counter() - start)


def tokenisation_seconds(data: DataArguments, model: str, seed: int) -> tuple[float, float]:
    """Seconds to tokenise the splits of ``data`` in a fresh process with an empty ``datasets`` cache, then in
    another fresh process with the cache the first one left."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "HF_DATASETS_CACHE": cache}
        argv = [sys.executable, str(TOKENISE_CHILD), json.dumps(dataclasses.asdict(data)), model, str(seed)]
        first, again = (float(subprocess.run(argv, env=env, capture_output=True, text=True,
                                             check=True).stdout.split()[-1])
                        for _ in range(2))
    return first, again


def main(argv: list[str] | None = None) -> None:
    """Time the three pipelines in rounds, evaluation and tokenisation; print and write the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per pipeline and round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--eval_rows", type=int, default=512, help="target-test reviews read per evaluation timing")
    parser.add_argument("--recipe", default=str(recipe_path("text")))
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "throughput.json"))
    args = parser.parse_args(argv)
    use_available_cpu_threads()
    scratch = tempfile.mkdtemp(prefix="hfadapt-throughput-")
    # the recipe's data and settings, as the example reads them
    data_args, config = parse_with_config((DataArguments, AdaptConfig), ["--output_dir", scratch, "--disable_tqdm",
                                                                         "true", "--logging_steps", "10000"],
                                          default_config=args.recipe)
    config = dataclasses.replace(config, max_steps=args.warmup + args.steps, save_strategy="no")
    model_path = str(packaged_minilm_path())
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    splits = load_transfer_splits(data_args, seed=config.seed)
    tokenised = {padding: tokenize_splits(splits, tokenizer, data_args.text_columns, data_args.max_length,
                                          padding=padding)
                 for padding in {p for p, _ in PIPELINES.values()}}
    eval_rows = tokenised[False].target_test.select(range(min(args.eval_rows, len(splits.target_test))))
    eval_rows = eval_rows.select_columns([c for c in eval_rows.column_names if c in tokenizer.model_input_names])

    train, evaluation = {name: [] for name in PIPELINES}, {}
    for _ in range(args.rounds):
        for name, (padding, strategy) in PIPELINES.items():
            data = tokenised[padding]
            trainer = AdaptTrainer(AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2),
                                   dataclasses.replace(config, train_sampling_strategy=strategy),
                                   train_dataset=data.source_train, target_dataset=data.target_train,
                                   processing_class=tokenizer, callbacks=[StepTimer()])
            train[name].append(train_tokens_per_second(trainer, args.warmup))
            if padding is False:
                for batch in (config.per_device_train_batch_size, config.per_device_eval_batch_size):
                    evaluation.setdefault(f"{strategy}, batch {batch}", []).append(
                        eval_rows_per_second(trainer, eval_rows, batch))
    train = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in train.items()}
    evaluation = {name: statistics.median(v) for name, v in evaluation.items()}
    first, again = tokenisation_seconds(data_args, model_path, config.seed)

    base = train[BEFORE]
    lines = [f"Training, {data_args.source} -> {data_args.target}, {config.method}, {data_args.max_length} tokens, "
             f"batch {config.per_device_train_batch_size}: median over {args.rounds} rounds of {args.steps} steps",
             "| pipeline | real tokens / s | ratio | padded tokens / step | ratio | s / step |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {name} | {r['tokens_per_s']:.0f} | {r['tokens_per_s'] / base['tokens_per_s']:.2f} | "
              f"{r['padded_tokens_per_step']:.0f} | "
              f"{r['padded_tokens_per_step'] / base['padded_tokens_per_step']:.2f} | "
              f"{r['s_per_step']:.2f} |" for name, r in train.items()]
    lines += [f"\nEvaluation (forward only, {len(eval_rows)} target-test reviews)",
              "| order, batch size | reviews / s | ratio |",
              "|---|---:|---:|"]
    eval_base = evaluation[f"random, batch {config.per_device_train_batch_size}"]
    lines += [f"| {name} | {v:.1f} | {v / eval_base:.2f} |" for name, v in evaluation.items()]
    lines += [f"\nTokenising the splits: {first:.2f} s the first time, {again:.2f} s in a fresh process reading the "
              "datasets cache"]
    text = "\n".join(lines)
    print(text)
    report = {**run_header("throughput.py", argv if argv is not None else sys.argv[1:]), "train": train,
              "eval": evaluation, "tokenise_s": {"first": first, "cached": again}}
    write_results(args.output, report, "\n" + text)


if __name__ == "__main__":
    main()
