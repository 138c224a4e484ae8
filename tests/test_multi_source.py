"""Several labelled source domains -> one target: batches, per-domain loss weights and logs, DANN over all domains."""

import pytest
import torch
from conftest import tiny_bert, token_dataset
from helpers import make_config, trainable_state

from hfadapt import AdaptTrainer
from hfadapt.modeling.model import AdaptModel
from hfadapt.modeling.source_weighting import proximity_weights


def sources():
    return {"near": token_dataset(24, seed=1, shift=6), "far": token_dataset(16, seed=4, shift=0)}


def target():
    return token_dataset(32, seed=2, shift=8, labels=False)


def test_multi_source_dann_trains_and_logs_every_domain(tmp_path):
    trainer = AdaptTrainer(tiny_bert(), make_config(tmp_path, method="dann", per_device_train_batch_size=8),
                           train_dataset=sources(), target_dataset=target())
    dann = trainer.adapt_model.methods["dann"]
    assert dann.discriminator[-1].out_features == 3  # near, far, target
    assert trainer.adapt_model.domain_names == ["near", "far", "target"]
    before = trainable_state(trainer)
    trainer.train()
    after = trainable_state(trainer)
    assert [n for n in before if torch.equal(before[n], after[n])] == []
    logged = [e for e in trainer.state.log_history if "loss" in e]
    for key in ("loss_task_near", "loss_task_far", "accuracy_near", "accuracy_far", "loss_dann", "dann_accuracy"):
        assert all(key in e for e in logged), key
    # L_task = sum_d lambda_d L_d with uniform lambda_d = 1/2
    for e in logged:
        assert e["loss_task"] == pytest.approx(0.5 * e["loss_task_near"] + 0.5 * e["loss_task_far"], abs=2e-4)


def test_task_loss_is_the_lambda_weighted_sum_of_domain_means():
    model = AdaptModel(tiny_bert(), num_domains=3, domain_names=["a", "b", "target"], source_domain_weights=[3, 1])
    logits = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.5, 0.5], [2.0, 1.0], [0.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1, -100])
    domain = torch.tensor([0, 0, 1, 1, 2])
    ce = torch.nn.functional.cross_entropy(logits[:4], labels[:4], reduction="none")
    loss, parts = model._task_loss(logits, labels, domain)
    assert loss.item() == pytest.approx(0.75 * ce[:2].mean().item() + 0.25 * ce[2:].mean().item(), abs=1e-6)
    assert parts["accuracy_a"].item() == 0.5 and parts["accuracy_b"].item() == 0.0
    with pytest.raises(ValueError, match="source domain weights"):
        model.set_source_domain_weights([1.0])


def test_fixed_source_weights_are_used_in_dict_order(tmp_path):
    config = make_config(tmp_path, method="none", source_weighting="fixed", source_domain_weights=[1.0, 3.0])
    trainer = AdaptTrainer(tiny_bert(), config, train_dataset=sources(), target_dataset=target())
    assert trainer.source_domain_weights == pytest.approx({"near": 0.25, "far": 0.75})
    bad = make_config(tmp_path, method="none", source_weighting="fixed", source_domain_weights=[1.0])
    with pytest.raises(ValueError, match="1 values for 2 source domains"):
        AdaptTrainer(tiny_bert(), bad, train_dataset=sources(), target_dataset=target())


def test_auto_source_weights_favour_the_closer_source(tmp_path):
    config = make_config(tmp_path, method="dann", source_weighting="auto")
    trainer = AdaptTrainer(tiny_bert(), config, train_dataset=sources(), target_dataset=target())
    weights = trainer.source_domain_weights
    assert sum(weights.values()) == pytest.approx(1.0)
    near, far = trainer.source_domain_distances
    assert near < far and weights["near"] > weights["far"]


def test_proximity_weights_hand_computed():
    torch.manual_seed(0)
    t = torch.randn(20, 4)
    weights, distances = proximity_weights([t.clone(), t + 3.0], t)
    assert distances[0] == pytest.approx(0.0, abs=1e-6) and distances[1] > 0
    # softmax(-D / mean D) with D = (0, d): (1, e^-2) normalised
    e = torch.exp(torch.tensor(-2.0)).item()
    assert weights == pytest.approx([1 / (1 + e), e / (1 + e)], abs=1e-5)
    equal, _ = proximity_weights([t, t], t)
    assert equal == pytest.approx([0.5, 0.5])


def test_bad_source_dicts(tmp_path):
    config = make_config(tmp_path, method="dann")
    with pytest.raises(ValueError, match="empty dict"):
        AdaptTrainer(tiny_bert(), config, train_dataset={}, target_dataset=target())
    with pytest.raises(ValueError, match="identifiers other than 'target'"):
        AdaptTrainer(tiny_bert(), config, train_dataset={"target": sources()["near"]}, target_dataset=target())
    empty = {"near": sources()["near"], "far": sources()["far"].select([])}
    with pytest.raises(ValueError, match="source 'far'.*empty"):
        AdaptTrainer(tiny_bert(), config, train_dataset=empty, target_dataset=target())
    three_classes = {"near": sources()["near"], "far": token_dataset(16, seed=4, num_labels=3)}
    with pytest.raises(ValueError, match="labels"):
        AdaptTrainer(tiny_bert(), config, train_dataset=three_classes, target_dataset=target())
