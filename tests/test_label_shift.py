"""The label-shift benchmarks' numeric parts: the subsampling to a class share, and EM's estimate of a target prior."""

import datasets
import pytest
import torch
from helpers import load_benchmark


def test_label_shifted_keeps_the_share_and_the_order():
    data = load_benchmark("label_shift_data")
    rows = datasets.Dataset.from_dict({"label": [0, 1] * 8, "i": list(range(16))})
    low = data.label_shifted(rows, "label", 1, 0.2, seed=0)  # 8 negatives bound it: 2 positives
    assert sorted(low["label"]) == [0] * 8 + [1] * 2
    assert low["i"] == sorted(low["i"])  # original order
    high = data.label_shifted(rows, "label", 1, 0.8, seed=0)
    assert sorted(high["label"]) == [0] * 2 + [1] * 8
    assert data.label_shifted(rows, "label", 1, 0.8, seed=0)["i"] == high["i"]  # seeded
    assert data.shifted_domain_name("electronics", 0.2) == "electronics-pos20"


def test_label_shifted_refuses_a_domain_without_one_class():
    data = load_benchmark("label_shift_data")
    with pytest.raises(ValueError, match="rows of label 1"):
        data.label_shifted(datasets.Dataset.from_dict({"label": [0, 0, 0]}), "label", 1, 0.5, seed=0)


def test_draw_sets_the_share():
    bench = load_benchmark("prior_matching_label_shift")
    labels = torch.tensor([0, 1] * 10)
    idx = bench.draw(labels, 0.2, torch.Generator().manual_seed(0))
    assert labels[idx].tolist().count(1) == 2 and labels[idx].tolist().count(0) == 8
    assert len(set(idx.tolist())) == len(idx)  # without replacement


def test_em_recovers_a_shifted_prior_from_bayes_posteriors():
    # two kinds of row: p(a | y=1) = 0.9, p(a | y=0) = 0.2; a model trained at prior (0.5, 0.5) outputs the Bayes
    # posteriors p(y=1 | a) = 0.9 / 1.1, p(y=1 | b) = 0.1 / 0.9. At target prior 0.8 a makes 0.8*0.9 + 0.2*0.2 = 76%
    # of the rows, and the EM fixed point is the prior itself: 0.76 * 0.72 / 0.76 + 0.24 * 0.08 / 0.24 = 0.8.
    bench = load_benchmark("prior_matching_label_shift")
    post_a, post_b = torch.tensor([0.2 / 1.1, 0.9 / 1.1]), torch.tensor([0.8 / 0.9, 0.1 / 0.9])
    logits = torch.cat([post_a.log().expand(76, 2), post_b.log().expand(24, 2)])
    estimate = bench.em_prior(logits, torch.tensor([0.5, 0.5]))
    assert estimate.tolist() == pytest.approx([0.2, 0.8], abs=1e-5)


def test_scores_at_the_balanced_share_match_the_model():
    bench = load_benchmark("prior_matching_label_shift")
    labels = torch.tensor([0, 1] * 20)
    logits = torch.stack([1 - labels.float(), labels.float()], dim=-1)  # always right
    (row,) = bench.scores(logits, labels, torch.tensor([0.5, 0.5]), [0.5], draws=2, seed=0)
    assert row["as_trained"] == row["source_prior"] == row["true_prior"] == pytest.approx(100.0)
    assert row["predicted_share"] == pytest.approx(0.5)


def test_label_shift_sizes_hand_computed():
    from hfadapt.benchmarking.label_shift import label_shift_sizes

    assert label_shift_sizes(1000, 1000, 0.2) == (250, 1000)  # 250 / 1250 = 0.2
    assert label_shift_sizes(1000, 1000, 0.8) == (1000, 250)
    assert label_shift_sizes(8, 8, 0.5) == (8, 8)
    with pytest.raises(ValueError, match="share"):
        label_shift_sizes(8, 8, 1.0)
    with pytest.raises(ValueError, match="both classes"):
        label_shift_sizes(0, 8, 0.5)


def test_the_label_shift_study_scores_the_models_a_grid_kept(tmp_path):
    from helpers import saved_tiny_bert

    from hfadapt.benchmarking import ledger

    model_dir = saved_tiny_bert(tmp_path / "tiny")
    common = ["--model_name_or_path", str(model_dir), "--pairs", "books:dvd", "--seeds", "1", "--methods", "none",
              "--max_length", "16", "--max_train_samples", "32", "--max_eval_samples", "40",
              "--mixed_precision", "no", "--members_dir", str(tmp_path / "members")]
    load_benchmark("sentiment_benchmark").main([*common, "--multi_source_pairs", "--max_steps", "2",
                                                "--results", str(tmp_path / "grid.jsonl"),
                                                "--table", str(tmp_path / "table.md")])
    results = tmp_path / "shift.jsonl"
    study = load_benchmark("prior_matching_label_shift")
    study.main([*common, "--shares", "0.2", "0.5", "--draws", "2", "--results", str(results)])
    study.main([*common, "--shares", "0.2", "0.5", "--draws", "2", "--results", str(results)])  # nothing left to do
    (row,) = ledger.load_results(results)
    assert (row["pair"], row["method"], row["seed"]) == ("books:dvd", "none", 1)
    assert [s["share"] for s in row["shares"]] == [0.2, 0.5]
    assert all(0 <= s[way] <= 100 for s in row["shares"] for way in study.WAYS)
