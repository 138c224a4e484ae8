"""A small adaptation run for the resume tests: ``python resumable_run.py OUT [--kill_at STEP] [--resume]``.

Trains a tiny BERT with DANN + MK-MMD for 8 optimizer steps, a checkpoint every 2. ``--kill_at STEP`` kills the
process (SIGKILL) while it writes the checkpoint of that step, after the full model state is on disk but before the
checkpoint is published; ``--resume`` continues from the last complete checkpoint. The final ``AdaptModel`` state is
written to ``OUT/final``.

It imports the tiny model builders from tests/tiny_models.py: run it with tests/ on ``PYTHONPATH`` (the tests
do, through ``helpers.script_env``).
"""

import argparse
import os
import signal

import torch
from tiny_models import tiny_bert, token_dataset

import hfadapt.trainer.checkpointing
from hfadapt import AdaptConfig, AdaptTrainer
from hfadapt.trainer.checkpointing import save_adapt_state


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--kill_at", type=int, default=None)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.kill_at is not None:
        def save_then_die(model, folder):
            save_adapt_state(model, folder)
            if folder.endswith(f"checkpoint-{args.kill_at}"):
                os.kill(os.getpid(), signal.SIGKILL)
        hfadapt.trainer.checkpointing.save_adapt_state = save_then_die
    config = AdaptConfig(
        output_dir=os.path.join(args.out, "run"), method="dann+mmd", per_device_train_batch_size=8, max_steps=8,
        learning_rate=1e-3, logging_steps=1, save_strategy="steps", save_steps=2, use_cpu=True, report_to="none",
        disable_tqdm=True, seed=0, dataloader_pin_memory=False, grl_schedule="warm_start", discriminator_dropout=0.1,
    )
    trainer = AdaptTrainer(tiny_bert(dropout=0.1), config, train_dataset=token_dataset(24, seed=1),
                           target_dataset=token_dataset(24, seed=2, shift=8, labels=False))
    trainer.train(resume_from_checkpoint=True if args.resume else None)
    save_adapt_state(trainer.adapt_model, os.path.join(args.out, "final"))


if __name__ == "__main__":
    main()
