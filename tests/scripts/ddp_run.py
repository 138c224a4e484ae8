"""A small adaptation run for the multi-process tests: ``python ddp_run.py OUT --per_device_batch B``.

Run once as one process at batch 16 and once under ``accelerate launch --multi_gpu --num_processes 2`` at batch 8
per process: the global batch, the rows of every step and the seed are the same. Plain SGD, so that weights
compare gradients: Adam's normalisation turns 1e-7 summation-order differences in near-zero gradient entries
into learning-rate-sized steps. Writes the logged history
(``OUT/history.json``) and the final ``AdaptModel`` state (``OUT/final``) from the main process.

It imports the tiny model builders from tests/tiny_models.py: run it with tests/ on ``PYTHONPATH`` (the tests
do, through ``helpers.script_env``).
"""

import argparse
import json
import os

import torch
from tiny_models import tiny_bert, token_dataset

from hfadapt import AdaptConfig, AdaptTrainer
from hfadapt.trainer.checkpointing import save_adapt_state
from hfadapt.utils.distributed import end_process_group


class CountingTrainer(AdaptTrainer):
    """Records the number of target rows of every training batch this process sees."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:
            self.target_rows.append(int((inputs["domain"] == 1).sum()))
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--per_device_batch", type=int, required=True)
    parser.add_argument("--method", default="dann+mmd+coral+mcc")
    parser.add_argument("--balancing", default="fixed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = AdaptConfig(
        output_dir=os.path.join(args.out, "run"), method=args.method, per_device_train_batch_size=args.per_device_batch,
        max_steps=6, learning_rate=0.05, optim="sgd", logging_steps=1, report_to="none", disable_tqdm=True, seed=0,
        dataloader_pin_memory=False, alignment_balancing=args.balancing, weight_schedule="constant",
        discriminator_dropout=0.0, ddp_find_unused_parameters=False,
        ddp_timeout=120,  # a stuck collective fails within 2 minutes with gloo's error instead of hanging
    )
    trainer = CountingTrainer(tiny_bert(), config, train_dataset=token_dataset(48, seed=1),
                           target_dataset=token_dataset(48, seed=2, shift=8, labels=False))
    trainer.target_rows = []
    trainer.train()
    # every process's every batch keeps the proportion: half of its rows are target rows
    assert trainer.target_rows == [args.per_device_batch // 2] * 6, trainer.target_rows
    if trainer.is_world_process_zero():
        history = [e for e in trainer.state.log_history if "loss" in e]
        info = {"world_size": trainer.accelerator.num_processes, "history": history}
        with open(os.path.join(args.out, "history.json"), "w") as f:
            json.dump(info, f)
        save_adapt_state(trainer.adapt_model, os.path.join(args.out, "final"))
    end_process_group()


if __name__ == "__main__":
    main()
