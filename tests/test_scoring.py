"""Scoring a classifier without training it (hfadapt.evaluation.scoring): the scores a run reports, for fused models."""

import pytest
import torch
from conftest import tiny_bert, tiny_tokenizer, token_dataset
from transformers import DataCollatorWithPadding

from hfadapt import AdaptConfig
from hfadapt.data.splits import TransferSplits
from hfadapt.evaluation.experiment import train_and_evaluate
from hfadapt.evaluation.scoring import head_input_reader, score_classifier
from hfadapt.fusion import EnsembleForClassification
from hfadapt.modeling.features import HeadInputReader

VALIDATORS = ["dev", "im", "entropy"]


@pytest.fixture
def splits():
    return TransferSplits(source_train=token_dataset(32, seed=1), source_val=token_dataset(16, seed=4),
                          target_train=token_dataset(32, seed=2, shift=8, labels=False),
                          target_test=token_dataset(16, seed=3, shift=8), label_names=["a", "b"])


def collator():
    return DataCollatorWithPadding(tiny_tokenizer())


def trained(tmp_path, splits, method: str) -> tuple[dict, torch.nn.Module]:
    """A short run of ``method`` on ``splits`` (its reported scores) and its trained model."""
    config = AdaptConfig(str(tmp_path / method), method=method, per_device_train_batch_size=8, max_steps=6,
                         learning_rate=1e-3, use_cpu=True, report_to="none", disable_tqdm=True, seed=0,
                         label_free_validators=VALIDATORS)
    run = train_and_evaluate(tiny_bert, config, splits, tiny_tokenizer(), save=False, keep_weights=True)
    model = tiny_bert()
    model.load_state_dict(run.pop("weights"))
    return run, model


def test_scores_of_a_trained_model_are_those_its_run_reported(tmp_path, splits):
    run, model = trained(tmp_path, splits, "dann")
    scores = score_classifier(model, splits, collator(), validators=VALIDATORS)
    for key in ("source_val_accuracy", "target_accuracy", "target_macro_f1"):
        assert scores[key] == pytest.approx(run[key])
    assert scores["validators"] == pytest.approx(run["validators"], rel=1e-4)


def test_an_ensemble_of_one_model_scores_as_that_model(tmp_path, splits):
    _, model = trained(tmp_path, splits, "none")
    alone = score_classifier(model, splits, collator(), validators=VALIDATORS)
    ensemble = score_classifier(EnsembleForClassification.from_members([model]), splits, collator(),
                                validators=VALIDATORS)
    validators = ensemble.pop("validators")
    assert validators == pytest.approx(alone.pop("validators"), rel=1e-4)
    assert ensemble == pytest.approx(alone)


def test_an_ensemble_s_features_are_its_members_head_inputs_side_by_side():
    a, b = tiny_bert(seed=1).eval(), tiny_bert(seed=2).eval()
    batch = {"input_ids": torch.tensor([[1, 5, 6, 2], [1, 7, 8, 2]]),
             "attention_mask": torch.ones(2, 4, dtype=torch.long)}
    ensemble = EnsembleForClassification.from_members([a, b]).eval()
    features, logits = head_input_reader(ensemble).features_and_logits(**batch)
    fa, la = HeadInputReader(a).features_and_logits(**batch)
    fb, lb = HeadInputReader(b).features_and_logits(**batch)
    assert features.shape == (2, 64)  # two members of hidden size 32
    assert torch.equal(features, torch.cat([fa, fb], dim=1))
    expected = torch.log((la.softmax(-1) + lb.softmax(-1)) / 2)  # log of the averaged probabilities
    assert torch.allclose(logits, expected, atol=1e-6)


def test_scoring_without_target_labels_reports_source_validation_and_validators_only(tmp_path, splits):
    unlabelled = TransferSplits(splits.source_train, splits.source_val, splits.target_train, None, splits.label_names)
    scores = score_classifier(tiny_bert(), unlabelled, collator(), validators=["im"])
    assert set(scores) == {"source_val_accuracy", "validators"}


def test_a_model_without_a_classification_head_is_refused(splits):
    with pytest.raises(ValueError, match="classification head"):
        score_classifier(torch.nn.Linear(4, 2), splits, collator())
