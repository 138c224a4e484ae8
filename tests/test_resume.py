"""Resumable runs: a killed run resumes from its last complete checkpoint and ends where an uninterrupted run ends."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_bert
from helpers import make_trainer, script_env
from safetensors.torch import load_file
from transformers.trainer_utils import get_last_checkpoint

from hfadapt.trainer.checkpointing import ADAPT_STATE_NAME, STAGING_DIR, load_adapt_state
from hfadapt.trainer.fingerprint import RunMismatchError

SCRIPT = Path(__file__).parent / "scripts" / "resumable_run.py"


def run(out: Path, *flags: str) -> subprocess.CompletedProcess:
    env = script_env(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, str(SCRIPT), str(out), *flags], env=env, capture_output=True, text=True,
                          timeout=300)


def final_state(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "final" / ADAPT_STATE_NAME)


def test_killed_run_resumes_to_the_uninterrupted_weights(tmp_path):
    whole = run(tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]

    killed = run(tmp_path / "killed", "--kill_at", "6")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    run_dir = tmp_path / "killed" / "run"
    # the checkpoint being written when the process died is not visible as checkpoint-6; the last complete one is 4
    assert not (run_dir / "checkpoint-6").exists()
    assert (run_dir / STAGING_DIR / "checkpoint-6").is_dir()
    assert get_last_checkpoint(str(run_dir)) == str(run_dir / "checkpoint-4")
    state = json.loads((run_dir / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4

    resumed = run(tmp_path / "killed", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not (run_dir / STAGING_DIR).exists()  # the half-written checkpoint was cleared by the next save
    expected, got = final_state(tmp_path / "whole"), final_state(tmp_path / "killed")
    assert expected.keys() == got.keys() and any(k.startswith("methods.dann.") for k in got)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-6, msg=name)


def test_checkpoint_holds_heads_and_loads_back(domains, tmp_path):
    source, target, _ = domains
    trainer = make_trainer(tiny_bert(), source, target, tmp_path, method="dann", save_strategy="steps", save_steps=2)
    trainer.train()
    checkpoint = tmp_path / "out" / "checkpoint-4"
    assert {"adapt_model.safetensors", "model.safetensors", "optimizer.pt", "scheduler.pt",
            "trainer_state.json"} <= set(os.listdir(checkpoint))
    other = make_trainer(tiny_bert(seed=5), source, target, tmp_path, method="dann")
    load_adapt_state(other.adapt_model, str(checkpoint))
    for (name, a), (_, b) in zip(trainer.adapt_model.state_dict().items(), other.adapt_model.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name


def test_resuming_from_a_folder_that_is_not_an_adapt_checkpoint(domains, tmp_path):
    source, target, _ = domains
    trainer = make_trainer(tiny_bert(), source, target, tmp_path, method="dann")
    folder = tmp_path / "plain"
    tiny_bert().save_pretrained(folder)
    with pytest.raises(FileNotFoundError, match="not a checkpoint of AdaptTrainer"):
        trainer.train(resume_from_checkpoint=str(folder))


def test_resuming_with_another_method_names_the_mismatch(domains, tmp_path):
    source, target, _ = domains
    make_trainer(tiny_bert(), source, target, tmp_path, method="dann", save_strategy="steps", save_steps=4).train()
    other = make_trainer(tiny_bert(), source, target, tmp_path, method="mmd")
    with pytest.raises(RunMismatchError, match="method: checkpoint 'dann', this run 'mmd'"):
        other.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-4"))


def test_loading_a_state_of_another_method_names_the_mismatch(domains, tmp_path):
    source, target, _ = domains
    make_trainer(tiny_bert(), source, target, tmp_path, method="dann", save_strategy="steps", save_steps=4).train()
    other = make_trainer(tiny_bert(), source, target, tmp_path, method="mmd")
    with pytest.raises(RuntimeError, match="does not match this run's model"):
        load_adapt_state(other.adapt_model, str(tmp_path / "out" / "checkpoint-4"))


def test_checkpoint_to_resume(tmp_path):
    from helpers import make_config

    from hfadapt.evaluation.experiment import checkpoint_to_resume

    assert checkpoint_to_resume(make_config(tmp_path)) is None
    assert checkpoint_to_resume(make_config(tmp_path, resume_from_checkpoint="true")) is None  # nothing saved yet
    (tmp_path / "out" / "checkpoint-2").mkdir(parents=True)
    (tmp_path / "out" / "checkpoint-10").mkdir()
    (tmp_path / "out" / STAGING_DIR / "checkpoint-12").mkdir(parents=True)  # half-written: never picked
    # the trainer then picks the latest checkpoint of its own run (by fingerprint)
    assert checkpoint_to_resume(make_config(tmp_path, resume_from_checkpoint="true")) is True
    assert checkpoint_to_resume(make_config(tmp_path, resume_from_checkpoint="/x/checkpoint-3")) == "/x/checkpoint-3"


def test_resuming_a_finished_run_trains_no_extra_step(domains, tmp_path):
    source, target, _ = domains
    first = make_trainer(tiny_bert(), source, target, tmp_path, method="dann", save_strategy="steps", save_steps=2)
    first.train()
    again = make_trainer(tiny_bert(seed=3), source, target, tmp_path, method="dann", save_strategy="steps",
                         save_steps=2)
    output = again.train(resume_from_checkpoint=True)
    assert output.global_step == 4 and again.state.global_step == 4
    assert not (tmp_path / "out" / "checkpoint-5").exists()
    for (name, a), (_, b) in zip(first.adapt_model.state_dict().items(), again.adapt_model.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
