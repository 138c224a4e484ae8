"""Digits domains (scikit-learn's optdigits, USPS shipped with the package) and the digits example."""

import runpy
from pathlib import Path

import numpy as np
import pytest

from hfadapt.data import load_optdigits, load_usps, resolve_usps_dir
from hfadapt.data.digits import digits_dataset
from hfadapt.evaluation.experiment import format_results_table

REPO = Path(__file__).resolve().parents[1]
USPS = REPO / "hfadapt" / "demo_data" / "usps"


def test_optdigits_split_is_stratified_and_rescaled():
    train, test = load_optdigits("train"), load_optdigits("test")
    assert len(train) + len(test) == 1797 and len(test) == 360
    image = np.asarray(train[0]["image"])
    assert image.shape == (8, 8) and image.dtype == np.uint8 and image.max() <= 255
    assert sorted(set(test["label"])) == list(range(10))
    assert train.features["label"].names == [str(d) for d in range(10)]


def test_digits_dataset_rejects_bad_arrays():
    with pytest.raises(ValueError, match="0-9"):
        digits_dataset(np.zeros((2, 4, 4)), np.array([3, 12]), 1.0)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        digits_dataset(np.zeros((2, 4)), np.array([3, 1]), 1.0)


def test_missing_usps_says_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="usps.npz"):
        resolve_usps_dir(tmp_path)
    assert resolve_usps_dir() == USPS  # the shipped copy


def test_usps_loads_both_splits():
    train, test = load_usps(USPS, "train"), load_usps(USPS, "test")
    assert (len(train), len(test)) == (7291, 2007)
    assert np.asarray(test[0]["image"]).shape == (16, 16)


def test_table_shows_the_share_of_the_gap_closed():
    runs = [
        {"method": "none", "source_val_accuracy": 0.97, "target_accuracy": 0.60, "target_gain_vs_source_only": 0.0,
         "gap_closed": None},
        {"method": "dann", "source_val_accuracy": 0.96, "target_accuracy": 0.75, "target_gain_vs_source_only": 0.15,
         "gap_closed": 0.5},
        {"method": "target-supervised", "source_val_accuracy": 0.9, "target_accuracy": 0.90,
         "target_gain_vs_source_only": 0.30, "gap_closed": None},
    ]
    table = format_results_table({"runs": runs}).splitlines()
    assert table[0].endswith("gap closed |")
    assert table[3] == "| dann | 96.00 | 75.00 | +15.00 | 50% |"
    assert table[4] == "| target-supervised | — | 90.00 | +30.00 | — |"


def test_digits_example_runs_all_three_and_reloads(tmp_path):
    main = runpy.run_path(str(REPO / "examples" / "digits_transfer.py"))["main"]  # the example's entry point
    results = main([
        "--usps_dir", str(USPS), "--max_train_samples", "300", "--max_eval_samples", "32", "--max_steps", "3",
        "--per_device_train_batch_size", "16", "--output_dir", str(tmp_path / "run"), "--disable_tqdm", "true",
        "--use_cpu", "true",
    ])
    assert [r["method"] for r in results["runs"]] == ["none", "adamatch", "target-supervised"]
    gap = results["runs"][2]["target_accuracy"] - results["runs"][0]["target_accuracy"]
    expected = results["runs"][1]["target_gain_vs_source_only"] / gap if gap else None
    assert results["runs"][1]["gap_closed"] == expected
    from transformers import AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(tmp_path / "run" / "adamatch")
    assert model.config.num_channels == 1 and model.config.id2label[3] == "3"
    assert (tmp_path / "run" / "adamatch" / "preprocessor_config.json").is_file()
