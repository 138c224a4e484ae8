"""Proxy A-distance and negative-transfer warnings on inputs whose answer is known."""

import pytest
import torch

from hfadapt.evaluation import negative_transfer_warnings, proxy_a_distance
from hfadapt.evaluation.negative_transfer import source_only_run
from hfadapt.methods import display_name


def test_pad_of_identical_and_separable_domains():
    g = torch.Generator().manual_seed(0)
    same = proxy_a_distance(torch.randn(200, 5, generator=g), torch.randn(200, 5, generator=g))
    assert same < 0.3  # a classifier cannot beat chance by much: error near 0.5
    apart = proxy_a_distance(torch.randn(200, 5, generator=g), torch.randn(200, 5, generator=g) + 10.0)
    assert apart == 2.0  # perfectly separable: error 0
    middle = proxy_a_distance(torch.randn(200, 5, generator=g), torch.randn(200, 5, generator=g) + 0.5)
    assert same < middle < apart
    with pytest.raises(ValueError, match="at least 4 rows"):
        proxy_a_distance(torch.randn(3, 5), torch.randn(10, 5))


def test_negative_transfer_with_and_without_target_labels():
    runs = [{"method": "none", "target_accuracy": 0.80}, {"method": "dann", "target_accuracy": 0.78},
            {"method": "mmd", "target_accuracy": 0.81}]
    (warning,) = negative_transfer_warnings(runs)
    assert warning.startswith("negative transfer: dann is 2.00 points below")
    assert negative_transfer_warnings(runs, tolerance=0.03) == []
    unlabelled = [{"method": "none", "target_accuracy": None, "validators": {"snd": 1.0, "dev": -0.5}},
                  {"method": "dann", "target_accuracy": None, "validators": {"snd": 0.9, "dev": -0.4}}]
    (warning,) = negative_transfer_warnings(unlabelled)
    assert "no target labels" in warning and "snd" in warning and "dev" not in warning
    assert negative_transfer_warnings([{"method": "dann", "target_accuracy": 0.5}]) == []  # no baseline


def test_the_baseline_row_and_its_display_name():
    runs = [{"method": "dann"}, {"method": "none", "target_accuracy": 0.8}, {"method": "none"}]
    assert source_only_run(runs) is runs[1]
    assert source_only_run(runs[:1]) is None and source_only_run([]) is None
    assert [display_name(m) for m in ("none", "dann", "self_training+mmd", "none + prior matching", "none+dann")] == [
        "source-only", "dann", "self_training+mmd", "source-only + prior matching", "none+dann"]


def test_source_accuracy_drop_z_by_hand():
    from hfadapt.evaluation.negative_transfer import source_accuracy_drop_z

    # pooled a = 0.5: sqrt(2 * 0.25 / 200) = 0.05, so (0.6 - 0.4) / 0.05 = 4; on 50 rows sqrt(0.01) = 0.1 -> 2
    assert source_accuracy_drop_z(0.6, 0.4, 200) == pytest.approx(4.0)
    assert source_accuracy_drop_z(0.6, 0.4, 50) == pytest.approx(2.0)
    assert source_accuracy_drop_z(0.4, 0.6, 50) == pytest.approx(-2.0)  # the method is above
    assert source_accuracy_drop_z(1.0, 1.0, 50) == 0.0
    with pytest.raises(ValueError, match="at least one row"):
        source_accuracy_drop_z(0.6, 0.4, 0)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        source_accuracy_drop_z(60.0, 40.0, 50)


def test_a_method_that_lost_the_source_task_is_warned_of_with_or_without_target_labels():
    from hfadapt.evaluation.negative_transfer import source_task_warnings

    runs = [{"method": "none", "source_val_accuracy": 0.6, "source_val_rows": 200, "target_accuracy": 0.70},
            {"method": "adamatch", "source_val_accuracy": 0.4, "source_val_rows": 200, "target_accuracy": 0.71},
            {"method": "target-supervised", "source_val_accuracy": 0.4, "source_val_rows": 200}]
    (warning,) = negative_transfer_warnings(runs)  # above source-only on the target, yet z = 4 on the source
    assert warning.startswith("adamatch has lost the source task: 40.00 on source validation against source-only's "
                              "60.00 on the same 200 rows (z = 4.0)")
    unlabelled = [{**run, "target_accuracy": None} for run in runs]
    assert negative_transfer_warnings(unlabelled) == [warning]
    assert source_task_warnings([{**run, "source_val_rows": 50} for run in runs]) == []  # z = 2: chance explains it
    assert source_task_warnings(runs, z=4.5) == []
    assert source_task_warnings([{k: v for k, v in run.items() if k != "source_val_rows"} for run in runs]) == []


def test_run_report_with_plots(tmp_path):
    import json

    from conftest import tiny_bert, token_dataset
    from helpers import make_config

    from hfadapt.data.splits import TransferSplits
    from hfadapt.evaluation.experiment import compare_with_source_only
    from hfadapt.evaluation.plots import loss_components
    from hfadapt.evaluation.report import write_report

    splits = TransferSplits(source_train=token_dataset(32, seed=1), source_val=token_dataset(16, seed=4),
                            target_train=token_dataset(32, seed=2, shift=8, labels=False),
                            target_test=token_dataset(16, seed=3, shift=8), label_names=["neg", "pos"])
    config = make_config(tmp_path, method="dann", output_dir=str(tmp_path / "run"))
    results = compare_with_source_only(tiny_bert, config, splits, pad_rows=16,
                                       metadata={"source": "books", "target": "kitchen"})
    for run in results["runs"]:
        assert 0.0 <= run["proxy_a_distance_before"] <= 2.0 and 0.0 <= run["proxy_a_distance_after"] <= 2.0
    assert results["config"]["method"] == "dann" and str(tmp_path) not in json.dumps(results["config"])
    assert results["convergence"] == []  # no evaluation during training: no trend to tell
    report = write_report(tmp_path / "run")
    text = report.read_text()
    for name in ("source_only", "dann"):
        assert (tmp_path / "run" / f"{name}_tsne.png").stat().st_size > 1000
        assert (tmp_path / "run" / f"{name}_losses.png").stat().st_size > 1000
        assert f"]({name}_tsne.png)" in text and f"]({name}_losses.png)" in text
    assert "| dann |" in text and "Proxy A-distance" in text and "`grl_max_lambda`" in text
    history = json.loads((tmp_path / "run" / "dann" / "log_history.json").read_text())
    assert {"loss", "loss_task", "loss_dann"} <= set(loss_components(history))


def test_report_of_a_folder_without_results(tmp_path):
    from hfadapt.evaluation.report import write_report

    with pytest.raises(FileNotFoundError, match="results.json does not exist"):
        write_report(tmp_path)


def test_row_sample_is_a_seeded_random_sample_not_the_first_rows():
    import datasets

    from hfadapt.data.sampler import row_sample

    sorted_by_label = datasets.Dataset.from_dict({"x": list(range(100)), "label": [0] * 50 + [1] * 50})
    sample = row_sample(sorted_by_label, 20, seed=0)
    assert len(sample) == 20 and set(sample["label"]) == {0, 1}  # the first 20 rows would all be negative
    assert (list(sample["x"]) == sorted(sample["x"])
            and list(row_sample(sorted_by_label, 20, seed=0)["x"]) == list(sample["x"]))
    assert row_sample(sorted_by_label, 500) is sorted_by_label
