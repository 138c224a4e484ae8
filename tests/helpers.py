"""Shared builders for trainer tests."""

from __future__ import annotations

from hfadapt import AdaptConfig, AdaptTrainer


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


def make_trainer(model, source, target, tmp_path, eval_dataset=None, **overrides) -> AdaptTrainer:
    return AdaptTrainer(model, make_config(tmp_path, **overrides), train_dataset=source, target_dataset=target,
                        eval_dataset=eval_dataset)


def trainable_state(trainer) -> dict:
    """Copies of every trainable parameter of the trainer's whole model (task model and heads)."""
    return {n: p.detach().clone() for n, p in trainer.adapt_model.named_parameters() if p.requires_grad}
