"""Two-stage adaptation (adapt_from_source_only): the method starts from the run's trained source-only baseline."""

import json

import pytest
import torch
from conftest import tiny_bert, token_dataset
from helpers import make_config
from transformers import AutoModelForSequenceClassification

from hfadapt.data.splits import TransferSplits
from hfadapt.evaluation import experiment
from hfadapt.utils.peft_utils import lora_config_from, plain_state_dict, wrap_with_peft


@pytest.fixture()
def splits():
    return TransferSplits(source_train=token_dataset(32, seed=1), source_val=token_dataset(16, seed=4),
                          target_train=token_dataset(32, seed=2, shift=8, labels=False),
                          target_test=token_dataset(16, seed=3, shift=8), label_names=["neg", "pos"])


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_initial_weights_are_loaded_and_kept_weights_are_the_trained_model(tmp_path, splits):
    start = plain_state_dict(tiny_bert(seed=7))
    assert not _same(start, plain_state_dict(tiny_bert(seed=0)))
    frozen = make_config(tmp_path, method="none", learning_rate=0.0)  # no step moves a weight
    run = experiment.train_and_evaluate(tiny_bert, frozen, splits, save=False, initial_weights=start,
                                        keep_weights=True)
    assert _same(run["weights"], start)
    trained = experiment.train_and_evaluate(tiny_bert, make_config(tmp_path, method="none",
                                                                   output_dir=str(tmp_path / "saved")),
                                            splits, keep_weights=True)
    saved = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved")
    assert _same(trained["weights"], plain_state_dict(saved))
    assert not _same(trained["weights"], plain_state_dict(tiny_bert()))
    assert "weights" not in experiment.train_and_evaluate(tiny_bert, frozen, splits, save=False)


def test_the_method_starts_from_the_trained_baseline(tmp_path, splits, monkeypatch):
    starts = {}
    train = experiment.train_and_evaluate

    def spy(make_model, config, *args, **kwargs):
        starts[config.method] = kwargs.get("initial_weights")
        return train(make_model, config, *args, **kwargs)

    monkeypatch.setattr(experiment, "train_and_evaluate", spy)
    config = make_config(tmp_path, method="self_training", adapt_from_source_only=True,
                         self_training_warmup=0.0, output_dir=str(tmp_path / "run"))
    results = experiment.compare_with_source_only(tiny_bert, config, splits)
    assert starts["none"] is None
    baseline = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run" / "source_only")
    assert _same(starts["self_training"], plain_state_dict(baseline))  # the baseline as trained and saved
    assert all("weights" not in run for run in results["runs"])
    assert json.loads((tmp_path / "run" / "results.json").read_text())["config"]["adapt_from_source_only"] is True
    # the method's recipe records it; the baseline's does not (it is what a two-stage method starts from)
    assert config.adaptation_settings()["adapt_from_source_only"] is True
    assert config.two_stage and not make_config(tmp_path, method="none", adapt_from_source_only=True).two_stage
    assert "adapt_from_source_only" not in config.adaptation_settings("none")


def test_two_stage_without_the_baseline_is_refused_before_training(tmp_path, splits, monkeypatch):
    monkeypatch.setattr(experiment, "train_and_evaluate", lambda *a, **k: pytest.fail("trained"))
    config = make_config(tmp_path, method="self_training", adapt_from_source_only=True)
    with pytest.raises(ValueError, match="drop --baseline false"):
        experiment.compare_with_source_only(tiny_bert, config, splits, with_baseline=False)


def test_plain_state_dict_of_a_lora_model_is_the_merged_model(tmp_path):
    model = tiny_bert()
    lora = wrap_with_peft(model, lora_config_from(make_config(tmp_path, lora_r=4, lora_target_modules=["query"])))
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.fill_(0.1)  # a non-zero adapter, so that merging changes the query weights
    merged = plain_state_dict(lora)
    assert merged.keys() == plain_state_dict(tiny_bert()).keys()
    fresh = tiny_bert()
    fresh.load_state_dict(merged)
    ids = torch.randint(5, 60, (2, 8))
    lora.eval(), fresh.eval()
    torch.testing.assert_close(fresh(input_ids=ids).logits, lora(input_ids=ids).logits)
