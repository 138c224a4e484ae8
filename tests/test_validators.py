"""Label-free validators on inputs whose answer is known by hand."""

import math

import pytest
import torch

from hfadapt.selection import VALIDATORS, ValidationData, validator_score
from hfadapt.selection.importance import deep_embedded_validation_risk, density_ratio, importance_weighted_risk
from hfadapt.selection.snd import soft_neighbourhood_density


def data(target_probs, source_probs=None, labels=None, source_features=None, target_features=None):
    target_probs = torch.as_tensor(target_probs, dtype=torch.float32)
    source_probs = torch.as_tensor(source_probs if source_probs is not None else [[0.9, 0.1], [0.2, 0.8]])
    labels = torch.as_tensor(labels if labels is not None else [0, 1])
    return ValidationData(
        source_features=source_features if source_features is not None else torch.randn(len(source_probs), 3),
        source_probs=source_probs, source_labels=labels,
        target_features=target_features if target_features is not None else torch.randn(len(target_probs), 3),
        target_probs=target_probs,
    )


def test_registry():
    assert {"entropy", "im", "snd", "iwv", "dev", "source_val"} <= set(VALIDATORS)
    with pytest.raises(ValueError, match="unknown validator 'bogus'"):
        validator_score("bogus", data([[1.0, 0.0]]))


def test_entropy_and_im_by_hand():
    one_hot = data([[1.0, 0.0], [0.0, 1.0]])
    uniform = data([[0.5, 0.5], [0.5, 0.5]])
    collapsed = data([[1.0, 0.0], [1.0, 0.0]])
    assert validator_score("entropy", one_hot) == pytest.approx(0.0, abs=1e-6)
    assert validator_score("entropy", uniform) == pytest.approx(-math.log(2))
    assert validator_score("im", one_hot) == pytest.approx(math.log(2))  # confident and diverse: the maximum
    assert validator_score("im", uniform) == pytest.approx(0.0, abs=1e-6)
    assert validator_score("im", collapsed) == pytest.approx(0.0, abs=1e-6)  # confident but one class only
    assert validator_score("source_val", one_hot) == 1.0


def test_snd_by_hand():
    # Two tight clusters of 3 identical points: each row's neighbours are its 2 cluster mates (similarity 1/tau)
    # and 3 points at cosine 0 (similarity 0); softmax weights e^20 : e^20 : 1 : 1 : 1.
    x = torch.tensor([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3)
    z = 2 * math.exp(20.0) + 3
    p = [math.exp(20.0) / z] * 2 + [1 / z] * 3
    expected = -sum(q * math.log(q) for q in p)
    assert soft_neighbourhood_density(x) == pytest.approx(expected, rel=1e-9)
    # All points identical: every other point is an equally close neighbour -> entropy log(N - 1), the maximum.
    assert soft_neighbourhood_density(torch.ones(5, 2)) == pytest.approx(math.log(4))
    # Through the registry, on target probabilities: two confident classes of 4 rows each -> about log 3
    # (3 cluster mates; the other class at cosine 0.02 weighs e^-19 as much).
    clustered = data([[0.99, 0.01]] * 4 + [[0.01, 0.99]] * 4)
    assert validator_score("snd", clustered) == pytest.approx(math.log(3), abs=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        soft_neighbourhood_density(torch.ones(1, 2))


def test_iwv_and_dev_by_hand():
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0])
    weights = torch.tensor([0.5, 1.0, 1.0, 1.5])
    assert importance_weighted_risk(losses, weights) == pytest.approx((0.5 + 2 + 3 + 6) / 4)
    # DEV: L = w * l = [0.5, 2, 3, 6], mean 2.875; mean(w) = 1; eta multiplies (mean(w) - 1) = 0 -> same as IWV
    assert deep_embedded_validation_risk(losses, weights) == pytest.approx(2.875)
    # mean(w) != 1: L = [1, 2, 6, 8] (w = [1, 1, 2, 2]), mean 4.25; Cov(L, w) = 5.5/3, Var(w) = 1/3 -> eta = -5.5
    w2 = torch.tensor([1.0, 1.0, 2.0, 2.0])
    assert deep_embedded_validation_risk(losses, w2) == pytest.approx(4.25 - 5.5 * 1.5 + 5.5)
    # constant weights: DEV == IWV
    assert deep_embedded_validation_risk(losses, torch.ones(4)) == importance_weighted_risk(losses, torch.ones(4))


def test_density_ratio_favours_target_like_source_rows():
    g = torch.Generator().manual_seed(0)
    source = torch.randn(400, 2, generator=g)
    target = torch.randn(400, 2, generator=g) + torch.tensor([2.0, 0.0])
    w = density_ratio(source, target)
    near, far = source[:, 0] > 1.0, source[:, 0] < -1.0
    assert w[near].mean() > 5 * w[far].mean()
    # Same distribution: weights close to 1 on average.
    same = density_ratio(source, torch.randn(400, 2, generator=g))
    assert same.mean().item() == pytest.approx(1.0, abs=0.15)


def test_iwv_prefers_the_model_that_is_right_where_the_target_is():
    # Source rows at x=0 (far from the target) and x=2 (where the target lies). Model A errs on the far rows,
    # model B on the near ones: same source accuracy, but IWV and DEV rank A above B.
    g = torch.Generator().manual_seed(1)
    src = torch.cat([torch.randn(50, 1, generator=g) * 0.3, torch.randn(50, 1, generator=g) * 0.3 + 2])
    tgt = torch.randn(100, 1, generator=g) * 0.3 + 2
    labels = torch.tensor([0] * 50 + [1] * 50)
    right, wrong = torch.tensor([0.1, 0.9]), torch.tensor([0.9, 0.1])
    probs_a = torch.cat([torch.stack([right] * 50), torch.stack([right] * 50)])  # errs on far rows (label 0)
    probs_b = torch.cat([torch.stack([wrong] * 50), torch.stack([wrong] * 50)])  # errs on near rows (label 1)
    a = ValidationData(src, probs_a, labels, tgt, torch.stack([right] * 100))
    b = ValidationData(src, probs_b, labels, tgt, torch.stack([wrong] * 100))
    assert validator_score("source_val", a) == validator_score("source_val", b) == 0.5
    assert validator_score("iwv", a) > validator_score("iwv", b)
    assert validator_score("dev", a) > validator_score("dev", b)


def test_validation_data_rejects_bad_input():
    with pytest.raises(ValueError, match="probabilities"):
        data([[2.0, 3.0]])
    with pytest.raises(ValueError, match="classes"):
        data([[0.2, 0.3, 0.5]])
    with pytest.raises(ValueError, match="source and target rows"):
        data(torch.zeros(0, 2))


def test_trainer_keeps_the_checkpoint_a_validator_prefers(domains, tmp_path):
    from conftest import tiny_bert
    from helpers import make_trainer

    source, _, target_test = domains
    target_with_labels = target_test.shuffle(seed=0)  # labelled: the validators must not read them
    trainer = make_trainer(tiny_bert(), source, target_with_labels, tmp_path, method="dann",
                           eval_dataset={"source_val": source.select(range(16)), "target_test": target_test},
                           label_free_validators=["im", "snd", "dev"], eval_strategy="steps", eval_steps=2,
                           save_strategy="steps", save_steps=2, metric_for_best_model="im",
                           load_best_model_at_end=True, max_steps=6)
    trainer.train()
    evaluations = [e for e in trainer.state.log_history if "eval_im" in e]
    assert [e["step"] for e in evaluations] == [2, 4, 6]
    assert all({"eval_snd", "eval_dev"} <= e.keys() for e in evaluations)
    best = max(evaluations, key=lambda e: e["eval_im"])
    assert trainer.state.best_model_checkpoint.endswith(f"checkpoint-{best['step']}")
    # the loaded model is the best checkpoint's: its IM score is the best one
    assert trainer.label_free.scores(trainer.adapt_model)["im"] == pytest.approx(best["eval_im"], abs=1e-6)


def test_validators_never_read_target_labels(domains, tmp_path):
    from conftest import tiny_bert
    from helpers import make_trainer

    source, _, target_test = domains
    scores = []
    for labels in (target_test["label"], list(reversed(target_test["label"]))):
        target = target_test.remove_columns("label").add_column("label", list(labels))
        trainer = make_trainer(tiny_bert(), source, target, tmp_path, method="dann",
                               eval_dataset={"source_val": source}, label_free_validators=sorted(VALIDATORS))
        scores.append(trainer.label_free.scores(trainer.adapt_model))
    assert scores[0] == scores[1]


def test_label_free_validation_needs_a_source_split(domains, tmp_path):
    from conftest import tiny_bert
    from helpers import make_trainer

    source, target, target_test = domains
    with pytest.raises(ValueError, match="labelled source-validation set"):
        make_trainer(tiny_bert(), source, target, tmp_path, eval_dataset={"target_test": target_test},
                     label_free_validators=["snd"])
    with pytest.raises(ValueError, match="not registered"):
        make_trainer(tiny_bert(), source, target, tmp_path, label_free_validators=["bogus"])


def test_self_normalised_iwv_by_hand():
    losses, weights = torch.tensor([1.0, 3.0]), torch.tensor([0.1, 0.3])
    assert importance_weighted_risk(losses, weights) == pytest.approx((0.1 + 0.9) / 2)
    assert importance_weighted_risk(losses, weights, normalise=True) == pytest.approx(1.0 / 0.4)


def test_density_ratio_does_not_collapse_on_separable_high_dimensional_features():
    g = torch.Generator().manual_seed(2)
    source, target = torch.randn(50, 384, generator=g), torch.randn(50, 384, generator=g) + 0.05
    w = density_ratio(source, target)
    assert 0.2 < w.mean().item() < 5.0  # cross-fitted: not the ~0 a classifier scored on its own rows gives


def test_callback_selects_checkpoints_for_a_plain_transformers_trainer(domains, tmp_path):
    from conftest import tiny_bert
    from transformers import Trainer, TrainingArguments, default_data_collator

    from hfadapt import LabelFreeValidationCallback

    source, _, target_test = domains
    args = TrainingArguments(output_dir=str(tmp_path / "plain"), per_device_train_batch_size=8, max_steps=6,
                             learning_rate=1e-3, use_cpu=True, report_to="none", disable_tqdm=True,
                             eval_strategy="steps", eval_steps=2, save_strategy="steps", save_steps=2,
                             metric_for_best_model="im", load_best_model_at_end=True, seed=0)
    callback = LabelFreeValidationCallback(source.select(range(16)), target_test, default_data_collator, ["im", "snd"])
    trainer = Trainer(tiny_bert(), args, train_dataset=source, eval_dataset=source.select(range(16)),
                      callbacks=[callback])
    trainer.train()
    evaluations = [e for e in trainer.state.log_history if "eval_im" in e]
    assert [e["step"] for e in evaluations] == [2, 4, 6]
    best = max(evaluations, key=lambda e: e["eval_im"])
    assert trainer.state.best_model_checkpoint.endswith(f"checkpoint-{best['step']}")
    assert "label" not in callback.validation.target.column_names  # only model inputs of the target are kept
    assert trainer.evaluate()["eval_im"] == pytest.approx(best["eval_im"], abs=1e-6)  # the best model was loaded


def test_scoring_only_at_the_end_trains_the_same_model_and_scores_it_the_same(domains, tmp_path):
    from conftest import tiny_bert
    from helpers import make_config

    from hfadapt import AdaptTrainer
    from hfadapt.evaluation.metrics import classification_metrics

    source, target, _ = domains
    runs = {}
    for strategy in ("every_eval", "end"):
        config = make_config(tmp_path / strategy, method="dann", label_free_validators=["im", "dev"],
                             label_free_strategy=strategy, eval_strategy="steps", eval_steps=2, save_strategy="steps",
                             save_steps=2, metric_for_best_model="source_val_accuracy", load_best_model_at_end=True,
                             max_steps=6)
        trainer = AdaptTrainer(tiny_bert(dropout=0.1), config, train_dataset=source, target_dataset=target,
                               eval_dataset={"source_val": source.select(range(16))},
                               compute_metrics=classification_metrics)
        trainer.train()
        during = [e["step"] for e in trainer.state.log_history if "eval_im" in e]
        final = trainer.evaluate()
        runs[strategy] = (during, trainer.adapt_model.task_model.state_dict(), final["eval_im"], final["eval_dev"])
    assert runs["every_eval"][0] == [2, 4, 6] and runs["end"][0] == []  # "end": only the evaluate() after training
    for name, weight in runs["every_eval"][1].items():
        assert torch.equal(weight, runs["end"][1][name]), name  # scoring never draws from the training's RNG
    assert runs["end"][2:] == runs["every_eval"][2:]


def test_scoring_at_the_end_cannot_choose_checkpoints(tmp_path):
    from hfadapt import AdaptConfig

    with pytest.raises(ValueError, match="label_free_strategy='every_eval'"):
        AdaptConfig(output_dir=str(tmp_path), use_cpu=True, label_free_validators=["im"], label_free_strategy="end",
                    eval_strategy="steps", save_strategy="steps", metric_for_best_model="eval_im",
                    load_best_model_at_end=True)
    with pytest.raises(ValueError, match="label_free_strategy must be one of"):
        AdaptConfig(output_dir=str(tmp_path), use_cpu=True, label_free_strategy="never")
