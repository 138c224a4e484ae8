"""Shared builders for trainer tests."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

from hfadapt import AdaptConfig, AdaptTrainer

TESTS = Path(__file__).resolve().parent
BENCHMARKS = TESTS.parent / "benchmarks"


def load_benchmark(name: str):
    """The script ``benchmarks/<name>.py`` as a module (it imports only the installed package)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def saved_tiny_bert(folder: Path, num_labels: int = 2, positions: int = 64) -> Path:
    """``folder``, holding a tiny BERT (``num_labels`` classes, ``positions`` tokens at most) and its tokenizer
    saved as a checkpoint that ``--model_name_or_path`` or ``from_pretrained`` can read."""
    from tiny_models import tiny_bert, tiny_tokenizer

    tiny_bert(num_labels=num_labels, positions=positions).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


def script_env(**extra: str) -> dict[str, str]:
    """The environment for a script of tests/scripts run as a subprocess: this process's, tests/ first on
    ``PYTHONPATH`` (so the script imports ``tiny_models`` as the tests do), and ``extra`` on top."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def make_config(tmp_path, **overrides) -> AdaptConfig:
    values = dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,
        max_steps=4,
        learning_rate=1e-3,
        weight_decay=0.0,
        logging_steps=1,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        seed=0,
        dataloader_pin_memory=False,
    )
    values.update(overrides)
    return AdaptConfig(**values)


def make_trainer(model, source, target, tmp_path, eval_dataset=None, processing_class=None,
                 **overrides) -> AdaptTrainer:
    return AdaptTrainer(model, make_config(tmp_path, **overrides), train_dataset=source, target_dataset=target,
                        eval_dataset=eval_dataset, processing_class=processing_class)


def trainable_state(trainer) -> dict:
    """Copies of every trainable parameter of the trainer's whole model (task model and heads)."""
    return {n: p.detach().clone() for n, p in trainer.adapt_model.named_parameters() if p.requires_grad}


def backbone_after_training(tmp_path, **overrides) -> dict:
    """The task model's parameters after a short run of a tiny BERT *with dropout* (so that a shifted random stream
    shows) on token data, a tokenizer given (UDALM needs it)."""
    from tiny_models import tiny_bert, tiny_tokenizer, token_dataset

    source, target = token_dataset(32, seed=1), token_dataset(32, seed=2, shift=8, labels=False)
    trainer = AdaptTrainer(tiny_bert(dropout=0.1), make_config(tmp_path, **overrides), train_dataset=source,
                           target_dataset=target, processing_class=tiny_tokenizer())
    trainer.train()
    return {n: p for n, p in trainable_state(trainer).items() if not n.startswith("methods.")}


def assert_same_parameters(a: dict, b: dict, atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    assert [n for n in a if not torch.allclose(a[n], b[n], atol=atol)] == []


class Killed(Exception):
    """Raised by :func:`kill_after_checkpoint` where a killed process would have stopped."""


def kill_after_checkpoint(monkeypatch, step: int, method: str | None = None) -> None:
    """Make ``AdaptTrainer`` raise :class:`Killed` right after it publishes the checkpoint of ``step`` (in runs of
    ``method`` only, if given), as a run killed there would stop; ``monkeypatch.undo()`` lifts it."""
    save = AdaptTrainer._save_checkpoint

    def killed(self, model, trial):
        save(self, model, trial)
        if self.state.global_step == step and method in (None, self.args.method):
            raise Killed
    monkeypatch.setattr(AdaptTrainer, "_save_checkpoint", killed)
