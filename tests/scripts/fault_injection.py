"""Kill -9 a small experiment at seeded points, resume it, and report what each kill left behind.

``python fault_injection.py OUT --kills K --seed S [--categories training,checkpoint,...]``

1. Runs the experiment (``compare_with_source_only``: a tiny BERT, source-only baseline then DANN, 6 steps each, a
   checkpoint every 2, ``resume_from_checkpoint="true"``) uninterrupted in ``OUT/whole``, recording every event under
   its folder: each optimizer step, each file opened for writing (and its first write), each rename, deletion,
   ``torch.save`` and safetensors write.
2. Chooses ``K`` of those events with ``random.Random(S)``: one in each of ``--categories`` (training, checkpoint,
   final save, results, card), the rest anywhere.
3. For each, runs the experiment afresh in ``OUT/kill-<event>`` and SIGKILLs the process at that event (a write is
   cut after half its bytes), checks what is on disk, then runs the experiment again, which resumes, and checks it.
4. Writes ``OUT/report.json``: ``{"events": n, "trials": [{"event", "kind", "category", "path", "dir"}],
   "problems": [...]}``. A problem is a visible checkpoint or model folder that does not verify, a partial
   ``results.json`` or card, a kill that did not happen, or a resume that failed.

Every run is a child forked from this process after the imports (each a separate process killed by a real
SIGKILL; forking saves the seconds an import takes). The caller compares each trial's final models with
``OUT/whole``'s.

It imports the tiny model builders from tests/tiny_models.py: run it with tests/ on ``PYTHONPATH`` (the tests
do, through ``helpers.script_env``).
"""

import argparse
import builtins
import io
import json
import os
import random
import shutil
import signal
import sys
import traceback

import datasets
import safetensors.torch
import torch
import transformers.modeling_utils
from tiny_models import tiny_bert, tiny_tokenizer, token_dataset
from transformers.utils import logging

from hfadapt import AdaptConfig
from hfadapt.data import TransferSplits
from hfadapt.evaluation.experiment import compare_with_source_only
from hfadapt.trainer.integrity import MANIFEST_NAME, IntegrityError, verify_manifest
from hfadapt.trainer.trainer import AdaptTrainer

CATEGORIES = ("training", "checkpoint", "final save", "results", "card")


def run_experiment(out: str) -> None:
    """The experiment every trial runs (and re-runs to resume)."""
    torch.set_num_threads(1)
    splits = TransferSplits(source_train=token_dataset(24, seed=1), source_val=token_dataset(8, seed=4),
                            target_train=token_dataset(24, seed=2, shift=8, labels=False),
                            target_test=token_dataset(8, seed=3, shift=8), label_names=["negative", "positive"])
    config = AdaptConfig(output_dir=out, method="dann", per_device_train_batch_size=8, max_steps=6, learning_rate=1e-3,
                         logging_steps=1, save_strategy="steps", save_steps=2, use_cpu=True, report_to="none",
                         disable_tqdm=True, seed=0, dataloader_pin_memory=False, resume_from_checkpoint="true",
                         discriminator_dropout=0.1)
    card = {"source_domains": ["books"], "target_domain": "kitchen", "dataset_name": "tiny tokens"}
    compare_with_source_only(lambda: tiny_bert(dropout=0.1), config, splits, processing_class=tiny_tokenizer(),
                             card_details=card)


def category(kind: str, path: str | None) -> str:
    """Which part of a run an event belongs to."""
    if kind == "step":
        return "training"
    name = os.path.basename(path)
    if "checkpoint" in path:
        return "checkpoint"
    if "results.json" in name:
        return "results"
    if "README.md" in name:
        return "card"
    return "final save"


class Recorder:
    """Counts the events under ``root``; at event ``kill_at`` it runs the event's partial effect and SIGKILLs."""

    def __init__(self, root: str, kill_at: int | None):
        self.root, self.kill_at, self.events = os.path.abspath(root), kill_at, []

    def __call__(self, kind: str, path=None, partial=None) -> None:
        if path is not None:
            path = os.path.abspath(os.fspath(path))
            if not path.startswith(self.root + os.sep):
                return
            path = os.path.relpath(path, self.root)
        self.events.append((kind, path))
        if len(self.events) == self.kill_at:
            if partial is not None:
                partial()
            os.kill(os.getpid(), signal.SIGKILL)


class WriteOnce:
    """A file object whose first ``write`` is an event (killed there, half the bytes reach the disk)."""

    def __init__(self, real, record, path):
        self._real, self._record, self._path, self._seen = real, record, path, False

    def write(self, data):
        if not self._seen:
            self._seen = True

            def half():
                self._real.write(data[: len(data) // 2])
                self._real.flush()

            self._record("write", self._path, half)
        return self._real.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._real.__exit__(*exc)

    def __iter__(self):
        return iter(self._real)

    def __getattr__(self, name):
        return getattr(self._real, name)


def truncating(save, record, kind):
    """Wrap a function ``save(obj, path, ...)`` so that it is an event; killed there, the file is cut in half."""

    def wrapped(obj, path, *args, **kwargs):
        def half():
            save(obj, path, *args, **kwargs)
            size = os.path.getsize(path)
            with open(path, "r+b") as f:
                f.truncate(size // 2)

        if isinstance(path, str | os.PathLike):
            record(kind, path, half)
        return save(obj, path, *args, **kwargs)

    return wrapped


def instrument(record: Recorder) -> None:
    """Route training steps and file-system changes through ``record`` (in a child process only)."""
    real_open = builtins.open

    def open_(file, mode="r", *args, **kwargs):
        writing = isinstance(file, str | os.PathLike) and any(c in mode for c in "wax+")
        if writing:
            record("open", file)
        handle = real_open(file, mode, *args, **kwargs)
        return WriteOnce(handle, record, file) if writing else handle

    builtins.open = io.open = open_
    for module, name in ((os, "replace"), (os, "rename"), (os, "remove"), (shutil, "rmtree")):
        real = getattr(module, name)

        def hooked(*args, _real=real, _name=name, **kwargs):
            target = args[1] if _name in ("replace", "rename") else args[0]
            record(_name, target)
            return _real(*args, **kwargs)

        setattr(module, name, hooked)
    torch.save = truncating(torch.save, record, "torch.save")
    safetensors.torch.save_file = truncating(safetensors.torch.save_file, record, "safetensors")
    transformers.modeling_utils.safe_save_file = truncating(transformers.modeling_utils.safe_save_file, record,
                                                            "safetensors")
    real_step = AdaptTrainer.training_step

    def training_step(self, *args, **kwargs):
        record("step")
        return real_step(self, *args, **kwargs)

    AdaptTrainer.training_step = training_step


def in_child(out: str, kill_at: int | None, events_file: str | None = None) -> int:
    """Run the experiment in a forked child; returns its exit code (``-9`` when killed)."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            record = Recorder(out, kill_at)
            instrument(record)
            run_experiment(out)
            if events_file is not None:
                with io.FileIO(events_file, "w") as f:  # unhooked: FileIO is not builtins.open
                    f.write(json.dumps(record.events).encode())
        except BaseException:  # noqa: BLE001 - a child reports any failure by its exit code
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def problems_in(folder: str, finished: bool) -> list[str]:
    """What a later run could mistake for finished (or, when ``finished``, what a finished run lacks)."""
    found = []
    for root, _, files in os.walk(folder):
        name = os.path.basename(root)
        hidden = any(part.startswith(".") for part in os.path.relpath(root, folder).split(os.sep))
        if hidden:
            continue
        visible_checkpoint = name.startswith("checkpoint-")
        if visible_checkpoint or MANIFEST_NAME in files:
            try:
                verify_manifest(root)
            except IntegrityError as err:
                found.append(f"{os.path.relpath(root, folder)} looks complete but is not: {err}")
        if "results.json" in files:
            try:
                with io.FileIO(os.path.join(root, "results.json")) as f:
                    runs = json.loads(f.read())["runs"]
                if [r["method"] for r in runs] != ["none", "dann"]:
                    found.append(f"results.json lists {[r['method'] for r in runs]}")
            except (ValueError, KeyError) as err:
                found.append(f"results.json is partial: {err}")
        if "README.md" in files:
            with io.FileIO(os.path.join(root, "README.md")) as f:
                text = f.read().decode()
            if "## How to load" not in text or not text.rstrip().endswith("```"):
                found.append(f"{os.path.relpath(root, folder)}/README.md is partial")
    if finished:
        for run in ("source_only", "dann"):
            for needed in (MANIFEST_NAME, "README.md", "model.safetensors"):
                if not os.path.isfile(os.path.join(folder, run, needed)):
                    found.append(f"{run}/{needed} is missing after the resumed run")
        if not os.path.isfile(os.path.join(folder, "results.json")):
            found.append("results.json is missing after the resumed run")
    return found


def choose(events: list, kills: int, seed: int, categories: tuple[str, ...]) -> list[int]:
    """``kills`` event numbers (1-based): one of each category, then random others; sorted."""
    rng = random.Random(seed)
    by_category = {c: [i + 1 for i, (k, p) in enumerate(events) if category(k, p) == c] for c in CATEGORIES}
    chosen = {rng.choice(by_category[c]) for c in categories}
    rest = [i for i in range(1, len(events) + 1) if i not in chosen]
    chosen |= set(rng.sample(rest, max(0, kills - len(chosen))))
    return sorted(chosen)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--categories", default=",".join(CATEGORIES))
    args = parser.parse_args()
    categories = tuple(c for c in args.categories.split(",") if c)
    unknown = set(categories) - set(CATEGORIES)
    if unknown:
        raise SystemExit(f"unknown categories {sorted(unknown)}; choose from {CATEGORIES}")
    datasets.disable_progress_bars()
    logging.set_verbosity_error()
    os.makedirs(args.out, exist_ok=True)
    events_file = os.path.join(args.out, "events.json")
    whole = os.path.join(args.out, "whole")
    if in_child(whole, None, events_file) != 0:
        raise SystemExit("the uninterrupted run failed")
    with open(events_file) as f:
        events = json.load(f)
    report = {"events": len(events), "trials": [], "problems": problems_in(whole, finished=True)}
    for event in choose(events, args.kills, args.seed, categories):
        kind, path = events[event - 1]
        trial = os.path.join(args.out, f"kill-{event}")
        report["trials"].append({"event": event, "kind": kind, "category": category(kind, path), "path": path,
                                 "dir": trial})
        code = in_child(trial, event)
        if code != -signal.SIGKILL:
            report["problems"].append(f"kill at event {event} ({kind} {path}): exit code {code}, not killed")
            continue
        report["problems"] += [f"after kill at event {event} ({kind} {path}): {p}"
                               for p in problems_in(trial, finished=False)]
        code = in_child(trial, None)
        if code != 0:
            report["problems"].append(f"resume after kill at event {event} ({kind} {path}) exited {code}")
            continue
        report["problems"] += [f"resumed after kill at event {event} ({kind} {path}): {p}"
                               for p in problems_in(trial, finished=True)]
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
