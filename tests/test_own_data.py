"""Bringing your own data: files, folders, string labels, sentence pairs, no target labels, a domain column, YAML
layering, and the errors a new user meets. Tiny models built in-process; nothing is downloaded."""

import json
from pathlib import Path

import datasets
import pytest
import safetensors.torch
import torch
import yaml
from conftest import tiny_tokenizer
from helpers import saved_tiny_bert
from huggingface_hub import ModelCard

from hfadapt import AdaptConfig
from hfadapt.cli.runner import adapt
from hfadapt.data import DataArguments, load_table, load_transfer_splits, tokenize_splits
from hfadapt.data.loading import DEMO_DATASETS

WORDS = {"neg": "w5 w6 w7", "neu": "w20 w21 w22", "pos": "w40 w41 w42"}


def rows(n, labelled=True, shift=0, label_of=None):
    """``n`` rows of three classes (strings), texts drawn from the tiny tokenizer's words."""
    names = ["negative", "neutral", "positive"]
    out = []
    for i in range(n):
        cls = names[i % 3]
        row = {"text": f"{WORDS[cls[:3]]} w{10 + (i + shift) % 9} w{50 + shift % 9}", "domain": "src"}
        if labelled:
            row["label"] = label_of(cls) if label_of else cls
        out.append(row)
    return out


def write(path: Path, records: list[dict]) -> Path:
    """``records`` as a csv, jsonl or parquet file, by ``path``'s extension."""
    ds = datasets.Dataset.from_list(records)
    if path.suffix == ".csv":
        ds.to_csv(str(path), index=False)
    elif path.suffix == ".jsonl":
        ds.to_json(str(path), lines=True)
    else:
        ds.to_parquet(str(path))
    return path


@pytest.fixture
def tiny_model_dir(tmp_path):
    return str(saved_tiny_bert(tmp_path / "tiny-bert", num_labels=3))


def quick_config(tmp_path, **overrides):
    values = dict(output_dir=str(tmp_path / "run"), per_device_train_batch_size=8, max_steps=2, learning_rate=1e-3,
                  logging_steps=1, use_cpu=True, report_to="none", disable_tqdm=True, seed=0,
                  dataloader_pin_memory=False)
    return AdaptConfig(**{**values, **overrides})


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_files_with_three_string_labels_and_an_unlabelled_target(tmp_path, suffix):
    source = write(tmp_path / f"source{suffix}", rows(30))
    target = write(tmp_path / f"target{suffix}", rows(12, labelled=False, shift=3))
    splits = load_transfer_splits(DataArguments(source_train_file=str(source), target_train_file=str(target)))
    assert splits.label_names == ["negative", "neutral", "positive"]
    assert splits.source_train.features["label"] == datasets.ClassLabel(names=["negative", "neutral", "positive"])
    assert splits.sizes() == {"source_train": 24, "source_val": 6, "target_train": 12}  # no target test
    assert splits.target_test is None and not splits.has_target_labels
    assert sorted(splits.source_val["label"]) == [0, 0, 1, 1, 2, 2]  # stratified 80/20
    first = splits.source_train[0]
    assert splits.label_names[first["label"]] == next(r["label"] for r in rows(30) if r["text"] == first["text"])


def test_a_max_length_above_the_model_s_positions_is_refused_before_training(tmp_path):
    from hfadapt.cli.runner import adapt

    model = saved_tiny_bert(tmp_path / "tiny-bert", num_labels=3)  # 64 positions
    data = DataArguments(source_train_file=str(write(tmp_path / "s.csv", rows(12))),
                         target_train_file=str(write(tmp_path / "t.csv", rows(6, labelled=False))), max_length=65)
    with pytest.raises(ValueError, match=r"max_length 65 is more tokens than the model reads \(64 positions\): give "
                       r"--max_length 64 or less"):
        adapt(str(model), data, quick_config(tmp_path))
    assert not (tmp_path / "run").exists()  # nothing trained or written


def test_max_length_is_checked_against_absolute_positions_only():
    from types import SimpleNamespace

    from transformers import BertConfig, DebertaV2Config

    from hfadapt.data.text import check_max_length

    no_limit, roberta = SimpleNamespace(model_max_length=int(1e30)), SimpleNamespace(model_max_length=512)
    with pytest.raises(ValueError, match=r"max_length 513 is more tokens than the model reads \(512 positions\)"):
        check_max_length(513, no_limit, BertConfig(max_position_embeddings=512))
    with pytest.raises(ValueError, match=r"\(512 positions\)"):  # RoBERTa: 514 embeddings, 2 of them offset
        check_max_length(513, roberta, BertConfig(max_position_embeddings=514))
    check_max_length(512, roberta, BertConfig(max_position_embeddings=514))
    # relative positions read any length: not refused
    check_max_length(1024, no_limit, DebertaV2Config(max_position_embeddings=512, position_biased_input=False))
    check_max_length(1024, no_limit, BertConfig(max_position_embeddings=512, position_embedding_type="relative_key"))


def test_a_fine_tuned_classifier_of_another_label_count_starts_a_new_head(tmp_path):
    from hfadapt.cli.runner import text_model

    two = saved_tiny_bert(tmp_path / "two-labels", num_labels=2)  # e.g. a binary sentiment model, for 3 classes
    model = text_model(str(two), ["negative", "neutral", "positive"])
    assert model.classifier.out_features == 3 and model.config.id2label[1] == "neutral"
    kept = text_model(str(two), ["no", "yes"])  # the same label count: the checkpoint's head is kept
    saved = safetensors.torch.load_file(str(two / "model.safetensors"))
    assert torch.equal(kept.classifier.weight, saved["classifier.weight"])


def test_integer_labels_keep_their_order_and_a_label_column_of_another_name(tmp_path):
    source = write(tmp_path / "s.csv", [{"review": r["text"], "stars": {"negative": 1, "neutral": 3,
                                                                        "positive": 10}[r["label"]]}
                                        for r in rows(30)])
    target = write(tmp_path / "t.csv", [{"review": r["text"]} for r in rows(9, labelled=False)])
    data = DataArguments(source_train_file=str(source), target_train_file=str(target), text_column_name="review",
                         label_column_name="stars")
    splits = load_transfer_splits(data)
    assert splits.label_names == ["1", "3", "10"]  # numerically sorted, not "1", "10", "3"
    assert "label" in splits.source_train.column_names and "stars" not in splits.source_train.column_names


def test_local_dataset_folders(tmp_path):
    # save_to_disk, a DatasetDict: the split is picked by name
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(rows(12)),
                               "test": datasets.Dataset.from_list(rows(6, shift=1))})
    dd.save_to_disk(str(tmp_path / "saved"))
    assert len(load_table(str(tmp_path / "saved"), split="test")) == 6
    with pytest.raises(ValueError, match=r"no split 'validation'; its splits: \['test', 'train'\]"):
        load_table(str(tmp_path / "saved"), split="validation")
    # a folder load_dataset reads: data files, and a dataset card whose features give a ClassLabel
    demo = load_table("demo:amazon-msd")
    assert len(demo) == 6000 and demo.features["label"].names == ["negative", "positive"]
    assert sorted(demo.unique("domain")) == ["books", "dvd", "electronics"]
    assert load_table(str(DEMO_DATASETS["demo:amazon-msd"])).num_rows == 6000  # the same folder by path
    # a plain folder of csv files
    (tmp_path / "plain").mkdir()
    write(tmp_path / "plain" / "part.csv", rows(5))
    assert load_table(str(tmp_path / "plain")).num_rows == 5


def test_sentence_pairs_from_a_saved_dataset(tmp_path):
    pairs = [{"premise": f"w{5 + i % 7} w9", "hypothesis": f"w{30 + i % 5}", "label": ["yes", "no"][i % 2]}
             for i in range(20)]
    datasets.Dataset.from_list(pairs).save_to_disk(str(tmp_path / "pairs"))
    target = [{"premise": f"w{40 + i % 7}", "hypothesis": "w33"} for i in range(10)]
    datasets.Dataset.from_list(target).save_to_disk(str(tmp_path / "target"))
    data = DataArguments(source_dataset_name=str(tmp_path / "pairs"), target_dataset_name=str(tmp_path / "target"),
                         text_column_name="premise,hypothesis", max_length=16)
    splits = tokenize_splits(load_transfer_splits(data), tiny_tokenizer(), data.text_columns, data.max_length)
    row = splits.source_train[0]
    assert row["token_type_ids"].count(1) >= 2  # the second segment: hypothesis + [SEP]
    assert row["input_ids"].count(2) == 2  # [SEP] after each text


def test_domain_column_mode_several_sources(tmp_path):
    table = [{**r, "domain": d} for d, shift in (("a", 0), ("b", 1), ("c", 2)) for r in rows(15, shift=shift)]
    path = write(tmp_path / "all.jsonl", table)
    data = DataArguments(train_file=str(path), domain_column_name="domain", source="a+b", target="c",
                         validation_fraction=0.2)
    splits = load_transfer_splits(data)
    assert list(splits.source_train) == ["a", "b"] and splits.sizes() == {
        "source_train": 24, "source_val": 6, "target_train": 15, "target_test": 15}  # c is labelled: its test set
    with pytest.raises(ValueError, match=r"no row has domain = z; the values there are \['a', 'b', 'c'\]"):
        load_transfer_splits(DataArguments(train_file=str(path), domain_column_name="domain", source="a",
                                           target="z"))


def test_errors_name_what_is_wrong(tmp_path):
    source = write(tmp_path / "s.csv", rows(12))
    target = write(tmp_path / "t.csv", rows(6, labelled=False))
    with pytest.raises(ValueError, match=r"the source 's' has no column 'sentence' \(--text_column_name\); its "
                       r"columns are \['text', 'domain', 'label'\]"):
        load_transfer_splits(DataArguments(source_train_file=str(source), target_train_file=str(target),
                                           text_column_name="sentence"))
    test = write(tmp_path / "test.csv", rows(6, label_of=lambda c: {"negative": "neg"}.get(c, c)))
    with pytest.raises(ValueError, match=r"target test set has labels \['neg'\] that the source does not have"):
        load_transfer_splits(DataArguments(source_train_file=str(source), target_train_file=str(target),
                                           target_test_file=str(test)))
    one_class = write(tmp_path / "one.csv", [r for r in rows(12) if r["label"] == "neutral"])
    with pytest.raises(ValueError, match=r"the source's labelled rows \(column 'label'\) are all of one class "
                       r"\('neutral'\): a classifier needs rows of at least two classes"):
        load_transfer_splits(DataArguments(source_train_file=str(one_class), target_train_file=str(target)))
    with pytest.raises(ValueError, match="no target data"):
        load_transfer_splits(DataArguments(source_train_file=str(source)))
    (tmp_path / "sheet.xlsx").write_bytes(b"")
    with pytest.raises(ValueError, match=r"cannot read .*sheet.xlsx: a data file must end in one of"):
        load_table(files=str(tmp_path / "sheet.xlsx"))


def test_no_target_labels_no_target_accuracy_anywhere(tmp_path, tiny_model_dir):
    source = write(tmp_path / "reviews.csv", rows(30))
    target = write(tmp_path / "tweets.csv", rows(16, labelled=False, shift=4))
    data = DataArguments(source_train_file=str(source), target_train_file=str(target), max_length=16,
                         license="mit", language="en")
    results = adapt(tiny_model_dir, data, quick_config(tmp_path, method="dann"), pad_rows=8)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    for run in saved["runs"]:
        assert "target_accuracy" not in run and "target_macro_f1" not in run and "target_gain_vs_source_only" not in run
        assert set(run["validators"]) == {"im", "entropy"} and run["proxy_a_distance_after"] is not None
    assert saved["target_labels"] is False and saved["labels"] == ["negative", "neutral", "positive"]
    assert saved["source"] == "reviews" and saved["target"] == "tweets"
    assert results["runs"][1]["method"] == "dann"
    card = ModelCard.load(tmp_path / "run" / "dann" / "README.md")
    assert card.data.eval_results is None and "target accuracy" not in card.text
    assert card.data.license == "mit" and card.data.language == ["en"]
    assert "reviews.csv" in card.text and "tweets.csv" in card.text and "Amazon" not in card.text
    assert "No target labels were used" in card.text and "im (label-free)" in card.text
    assert str(tmp_path) not in card.text and 'pipeline("text-classification"' in card.text
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run" / "dann")
    assert model.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}


def test_tapt_on_your_own_target_file_before_the_method(tmp_path, tiny_model_dir):
    source = write(tmp_path / "reviews.csv", rows(30))
    target = write(tmp_path / "tweets.csv", rows(16, labelled=False, shift=4))
    data = DataArguments(source_train_file=str(source), target_train_file=str(target), max_length=16)
    adapt(tiny_model_dir, data, quick_config(tmp_path, method="self_training", tapt_steps=2))
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    runs = {run["method"]: run for run in saved["runs"]}
    assert len(runs["self_training"]["tapt_loss"]) == 2 and "tapt_loss" not in runs["none"]
    assert saved["config"]["tapt_steps"] == 2


def test_hub_dataset_names_reach_the_card(tmp_path):
    data = DataArguments(source_dataset_name="someone/reviews", target_dataset_name="someone/tweets")
    assert data.datasets_used() == ["someone/reviews", "someone/tweets"]
    assert DataArguments(dataset_name="demo:amazon-msd", domain_column_name="domain", source="books",
                         target="dvd").datasets_used() == []


def test_a_user_yaml_layers_over_the_recipe(tmp_path):
    from hfadapt.cli.scripts.text_transfer import parse

    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"learning_rate": 1e-4, "output_dir": str(tmp_path / "o")}))
    data, script, config = parse(["--config", str(mine), "--seed", "3"])
    assert config.learning_rate == 1e-4 and config.seed == 3  # the file, then the flag
    assert config.per_device_train_batch_size == 32 and config.grl_max_lambda == 0.1  # the recipe's, kept
    assert config.alignment_balancing == "gradient" and config.train_sampling_strategy == "group_by_length"
    assert (data.dataset_name, data.source, data.target) == ("demo:amazon-msd", "books", "electronics")
    # naming data of one's own drops the recipe's demo data and domains as a whole
    mine.write_text(yaml.safe_dump({"source_train_file": "s.csv", "target_train_file": "t.csv"}))
    data, _, config = parse(["--config", str(mine)])
    assert (data.dataset_name, data.domain_column_name, data.source, data.target) == (None, None, None, None)
    assert config.per_device_train_batch_size == 32
    data, _, _ = parse(["--source", "dvd", "--target", "books"])  # other domains of the demo data
    assert (data.dataset_name, data.source) == ("demo:amazon-msd", "dvd")


def test_image_script_on_imagefolders_without_target_labels(tmp_path):
    import numpy as np
    from PIL import Image

    from hfadapt.cli.scripts.image_transfer import main

    rng = np.random.default_rng(0)
    for cls, level in (("dark", 40), ("light", 200)):
        (tmp_path / "photos" / cls).mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(rng.normal(level, 20, (8, 8)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "photos" / cls / f"{i}.png")
    (tmp_path / "scans").mkdir()
    for i in range(10):
        Image.fromarray(rng.integers(0, 255, (12, 12), dtype=np.uint8)).save(tmp_path / "scans" / f"{i}.png")
    results = main(["--source_dataset_name", str(tmp_path / "photos"), "--target_dataset_name", str(tmp_path / "scans"),
                    "--hidden_size", "16", "--num_hidden_layers", "1", "--max_steps", "2",
                    "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8", "--pad_rows", "6",
                    "--output_dir", str(tmp_path / "run"), "--use_cpu", "true", "--disable_tqdm", "true"])
    assert results["labels"] == ["dark", "light"] and results["source"] == "photos" and results["target"] == "scans"
    assert [r["method"] for r in results["runs"]] == ["none", "adamatch"]  # no target-supervised run: no target labels
    assert all("target_accuracy" not in r and "im" in r["validators"] for r in results["runs"])
    from transformers import AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(tmp_path / "run" / "adamatch")
    assert model.config.id2label == {0: "dark", 1: "light"}


def test_hfadapt_train_from_the_wheel_reads_nothing_outside_the_package(tmp_path):
    """Build the wheel, unpack it, and run `hfadapt train` with only the unpacked wheel on the path, from another
    folder: the recipe, the demo data and the training script must all come from inside the package."""
    import os
    import shutil
    import subprocess
    import sys
    import zipfile

    repo = Path(__file__).resolve().parents[1]
    source = tmp_path / "source"  # a copy: the build leaves build/ and *.egg-info beside the sources
    shutil.copytree(repo, source, ignore=shutil.ignore_patterns(".git", ".venv", "venv", "build", "*.egg-info",
                                                                "__pycache__", "runs", ".pytest_cache", ".ruff_cache"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source),
                           "-w", str(tmp_path / "wheel")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = (tmp_path / "wheel").glob("hfadapt-*.whl")
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    model = saved_tiny_bert(tmp_path / "tiny")
    (tmp_path / "elsewhere").mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    launcher = ("import sys, hfadapt, hfadapt.cli.main; print('from', hfadapt.__file__); "
                "sys.exit(hfadapt.cli.main.main())")
    cmd = [sys.executable, "-c", launcher, "train", "--model_name_or_path", str(model), "--max_train_samples", "16",
           "--max_eval_samples", "8", "--max_steps", "1", "--per_device_train_batch_size", "8", "--max_length", "16",
           "--pad_rows", "0", "--output_dir", str(tmp_path / "run"), "--use_cpu", "true", "--disable_tqdm", "true"]
    done = subprocess.run(cmd, cwd=tmp_path / "elsewhere", env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"from {tmp_path / 'site' / 'hfadapt' / '__init__.py'}" in done.stdout
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert (results["source"], results["target"]) == ("books", "electronics")  # the recipe's demo domains
    assert results["config"]["grl_max_lambda"] == 0.1 and results["config"]["per_device_train_batch_size"] == 8


def test_the_readme_own_data_snippet_runs(tmp_path, monkeypatch, capsys):
    """The README's five lines and its pipeline() example, as written, with a tiny model for bert-base-uncased."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    after = readme.split("<!-- own-data-snippet -->", 1)[1]
    snippet, pipeline_example = re.findall(r"```python\n(.*?)```", after, re.S)[:2]
    assert len(snippet.strip().splitlines()) <= 6 and "pipeline(" in pipeline_example
    model = saved_tiny_bert(tmp_path / "tiny-bert", num_labels=3, positions=128)  # the snippet's default max_length
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "reviews.csv", [{"text": r["text"], "label": r["label"]} for r in rows(30)])
    write(tmp_path / "tweets.csv", [{"text": r["text"]} for r in rows(16, labelled=False, shift=2)])
    namespace = {}
    exec(snippet.replace('"bert-base-uncased"', repr(str(model))), namespace)  # noqa: S102
    assert set(namespace["results"]["runs"][-1]["validators"]) == {"im", "entropy"}
    exec(pipeline_example, namespace)  # noqa: S102
    assert "'label': '" in capsys.readouterr().out
    assert namespace["classifier"]("w5 w6 w7")[0]["label"] in {"negative", "neutral", "positive"}
