"""Kill -9 at seeded points (training, checkpoint writing, the final save, the results file, the card), resume, and
compare with the uninterrupted run: the same final models and results, and no folder left behind that a later run
would take for a finished one (tests/scripts/fault_injection.py does the killing and the checks on disk)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import script_env
from safetensors.torch import load_file

SCRIPT = Path(__file__).parent / "scripts" / "fault_injection.py"
RUNS = ("source_only", "dann")


def inject(out: Path, kills: int, seed: int, categories: tuple[str, ...]) -> dict:
    env = script_env(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, str(SCRIPT), str(out), "--kills", str(kills), "--seed", str(seed),
                           "--categories", ",".join(categories)], env=env, capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((out / "report.json").read_text())


def assert_same_outcome(trial: Path, whole: Path) -> None:
    for run in RUNS:
        expected, got = load_file(whole / run / "model.safetensors"), load_file(trial / run / "model.safetensors")
        assert expected.keys() == got.keys()
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-6,
                                       msg=f"{trial.name} {run} {name}")
    expected = json.loads((whole / "results.json").read_text())["runs"]
    got = json.loads((trial / "results.json").read_text())["runs"]
    for mine, theirs in zip(got, expected, strict=True):
        for key in ("method", "train_steps", "source_val_accuracy", "target_accuracy", "target_macro_f1"):
            assert mine[key] == theirs[key], (trial.name, key)


def check(report: dict, out: Path, kills: int, categories: tuple[str, ...]) -> None:
    assert report["problems"] == []
    assert len(report["trials"]) == kills
    assert set(categories) <= {t["category"] for t in report["trials"]}
    for trial in report["trials"]:
        assert_same_outcome(Path(trial["dir"]), out / "whole")


def test_three_kills_resume_to_the_uninterrupted_result(tmp_path):
    categories = ("training", "checkpoint", "final save")
    report = inject(tmp_path, kills=3, seed=0, categories=categories)
    check(report, tmp_path, 3, categories)


@pytest.mark.slow
def test_twelve_kills_across_every_stage_resume_to_the_uninterrupted_result(tmp_path):
    categories = ("training", "checkpoint", "final save", "results", "card")
    report = inject(tmp_path, kills=12, seed=1, categories=categories)
    check(report, tmp_path, 12, categories)
