"""Target prior matching (hfadapt.modeling.prior_matching): the logit shift by hand, the head it changes, the
trainer option and the benchmark's scores before and after."""

import math

import pytest
import torch
from conftest import tiny_bert, tiny_tokenizer, token_dataset
from helpers import make_trainer
from torch import nn
from transformers import DataCollatorWithPadding, RobertaConfig, RobertaForSequenceClassification

from hfadapt import AdaptConfig
from hfadapt.benchmarking.prior_matching import prior_matched_scores, source_labels
from hfadapt.data.splits import TransferSplits
from hfadapt.modeling.features import HeadInputReader
from hfadapt.modeling.inference import dataset_predictions
from hfadapt.modeling.prior_matching import class_prior, match_target_prior, prior_matching_shift, shift_head_bias

INPUTS = ["input_ids", "attention_mask"]


def mean_prediction(model, rows) -> torch.Tensor:
    return dataset_predictions(HeadInputReader(model), rows, DataCollatorWithPadding(tiny_tokenizer()), INPUTS,
                               max_rows=len(rows))[1].softmax(-1).mean(0)


# ---- the shift ---------------------------------------------------------------------------------------------------

def test_equal_logits_get_the_log_prior_ratio():
    # every row at softmax (1/2, 1/2): the shift must make it (1/4, 3/4), b_1 - b_0 = log 3, centred
    shift = prior_matching_shift(torch.zeros(5, 2), torch.tensor([0.25, 0.75]))
    assert shift.tolist() == pytest.approx([-math.log(3) / 2, math.log(3) / 2], abs=1e-6)


def test_a_model_already_at_the_prior_is_not_shifted():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, -1.0], [-1.0, 1.0]])  # symmetric: mean (1/2, 1/2)
    assert prior_matching_shift(logits, torch.tensor([0.5, 0.5])).tolist() == pytest.approx([0.0, 0.0], abs=1e-7)


def test_two_rows_by_hand():
    # logits (0, 0) and (0, log 3): p_1 = 1/2 and 3/4. With b = (-d/2, d/2), mean p_1 = 1/2 needs
    # 1 / (1 + e^-d) + 3 / (3 + e^-d) = 1, i.e. e^-d = sqrt(3): d = -log(3) / 2
    shift = prior_matching_shift(torch.tensor([[0.0, 0.0], [0.0, math.log(3)]]), torch.tensor([0.5, 0.5]))
    assert shift.tolist() == pytest.approx([math.log(3) / 4, -math.log(3) / 4], abs=1e-6)


def test_several_classes_reach_the_prior():
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(50, 4, generator=g) + torch.tensor([2.0, 0.0, -1.0, 0.0])
    prior = torch.tensor([0.1, 0.2, 0.3, 0.4])
    shift = prior_matching_shift(logits, prior)
    assert (logits + shift).softmax(-1).mean(0).tolist() == pytest.approx(prior.tolist(), abs=1e-5)
    assert float(shift.sum()) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("logits, prior, match", [
    (torch.zeros(0, 2), [0.5, 0.5], "N >= 1"),
    (torch.zeros(3), [0.5, 0.5], "N >= 1"),
    (torch.zeros(3, 1), [1.0], "C >= 2"),
    (torch.tensor([[0.0, float("nan")]]), [0.5, 0.5], "NaN"),
    (torch.zeros(3, 2), [0.2, 0.3, 0.5], "3 classes|2 classes"),
    (torch.zeros(3, 2), [0.0, 1.0], "> 0"),
    (torch.zeros(3, 2), [0.4, 0.4], "summing to 1"),
])
def test_bad_input_is_refused(logits, prior, match):
    with pytest.raises(ValueError, match=match):
        prior_matching_shift(logits, torch.tensor(prior))


def test_class_prior_counts_labelled_rows():
    assert class_prior([0, 1, 1, 1, -100], 2).tolist() == pytest.approx([0.25, 0.75])
    with pytest.raises(ValueError, match=r"classes \[2\] have no source row"):
        class_prior([0, 1, 1], 3)
    with pytest.raises(ValueError, match="no label"):
        class_prior([-100, -100], 2)
    with pytest.raises(ValueError, match="lie in"):
        class_prior([0, 2], 2)


# ---- the head ----------------------------------------------------------------------------------------------------

def test_the_shift_moves_the_logits_by_itself():
    model = tiny_bert().eval()
    batch = {"input_ids": torch.tensor(token_dataset(4, seed=5)["input_ids"])}
    before = model(**batch).logits
    shift_head_bias(model, torch.tensor([0.5, -0.5]))
    assert torch.allclose(model(**batch).logits - before, torch.tensor([[0.5, -0.5]] * 4), atol=1e-5)


def test_a_head_of_several_layers_shifts_its_last():
    config = RobertaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=37, max_position_embeddings=70, num_labels=2)
    model = RobertaForSequenceClassification(config)
    before = model.classifier.out_proj.bias.detach().clone()
    shift_head_bias(model, torch.tensor([1.0, -1.0]))
    assert (model.classifier.out_proj.bias - before).tolist() == pytest.approx([1.0, -1.0])


def test_a_head_without_bias_or_a_wrong_shift_is_refused():
    model = tiny_bert()
    with pytest.raises(ValueError, match="shape"):
        shift_head_bias(model, torch.zeros(3))
    model.classifier = nn.Linear(32, 2, bias=False)
    with pytest.raises(ValueError, match="no linear layer with a bias"):
        shift_head_bias(model, torch.zeros(2))


def test_matching_a_model_brings_its_mean_prediction_to_the_prior():
    model, target = tiny_bert().eval(), token_dataset(24, seed=2, shift=8, labels=False)
    collator = DataCollatorWithPadding(tiny_tokenizer())
    shift = match_target_prior(model, target, collator, INPUTS, [0.3, 0.7])
    assert mean_prediction(model, target).tolist() == pytest.approx([0.3, 0.7], abs=1e-4)
    assert float(shift.sum()) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="target set is empty"):
        match_target_prior(model, target.select([]), collator, INPUTS, [0.5, 0.5])


# ---- the trainer option and the benchmark ------------------------------------------------------------------------

def test_the_trainer_matches_the_trained_model_and_records_the_shift(tmp_path):
    source, target = token_dataset(32, seed=1), token_dataset(32, seed=2, shift=8, labels=False)
    trainer = make_trainer(tiny_bert(), source, target, tmp_path, method="dann", target_prior_matching=True)
    assert trainer.target_prior_shift is None
    trainer.train()
    prior = class_prior(source["label"], 2)
    assert len(trainer.target_prior_shift) == 2
    assert mean_prediction(trainer.adapt_model.task_model, target).tolist() == pytest.approx(prior.tolist(),
                                                                                             abs=1e-4)


def test_the_same_run_without_the_option_differs_by_the_shift_only(tmp_path):
    source, target = token_dataset(32, seed=1), token_dataset(32, seed=2, shift=8, labels=False)
    runs = {}
    for on in (False, True):
        trainer = make_trainer(tiny_bert(), source, target, tmp_path / str(on), target_prior_matching=on)
        trainer.train()
        runs[on] = (trainer, {n: p.detach().clone() for n, p in trainer.adapt_model.task_model.named_parameters()})
    (_, plain), (matched_trainer, matched) = runs[False], runs[True]
    for name in plain:
        expected = plain[name] + (torch.tensor(matched_trainer.target_prior_shift) if name == "classifier.bias" else 0)
        assert torch.allclose(matched[name], expected, atol=1e-6), name


def test_a_multi_task_model_is_refused(tmp_path):
    from test_multitask import tiny_multitask, with_rating

    source, target = with_rating(token_dataset(16, seed=1)), token_dataset(16, seed=2, labels=False)
    with pytest.raises(ValueError, match="target_prior_matching shifts the bias of one classification head"):
        make_trainer(tiny_multitask(), source, target, tmp_path, target_prior_matching=True)


def test_the_benchmark_scores_before_and_after_and_leaves_the_model_alone():
    splits = TransferSplits(source_train=token_dataset(32, seed=1), source_val=token_dataset(16, seed=4),
                            target_train=token_dataset(32, seed=2, shift=8, labels=False),
                            target_test=token_dataset(16, seed=3, shift=8), label_names=["a", "b"])
    model = tiny_bert()
    bias = model.classifier.bias.detach().clone()
    config = AdaptConfig("unused", use_cpu=True, report_to="none", label_free_validators=["dev"])
    scores = prior_matched_scores(model, splits, tiny_tokenizer(), config)
    assert torch.equal(model.classifier.bias, bias)
    assert set(scores) == {"shift", "unmatched", "matched"}
    assert set(scores["matched"]) == {"source_val_accuracy", "target_accuracy", "target_macro_f1", "validators"}
    assert source_labels(splits) == splits.source_train["label"]
    matched = tiny_bert()
    shift_head_bias(matched, torch.tensor(scores["shift"]))
    prior = class_prior(splits.source_train["label"], 2).tolist()  # 15 and 17 of the 32 rows
    assert mean_prediction(matched, splits.target_train).tolist() == pytest.approx(prior, abs=1e-3)


def test_under_lora_the_trained_head_is_the_one_shifted(tmp_path):
    source, target = token_dataset(32, seed=1), token_dataset(32, seed=2, shift=8, labels=False)
    trainer = make_trainer(tiny_bert(), source, target, tmp_path, use_peft=True, lora_r=4,
                           target_prior_matching=True)
    trainer.train()
    prior = class_prior(source["label"], 2)
    assert mean_prediction(trainer.adapt_model.task_model, target).tolist() == pytest.approx(prior.tolist(),
                                                                                             abs=1e-4)
