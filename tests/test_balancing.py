import pytest
import torch
from conftest import tiny_bert
from helpers import make_trainer

from hfadapt.balancing import MAX_RATIO, feature_gradient_norm, gradient_ratio
from hfadapt.grl import grl_warm_start


def test_ratio_of_hand_computed_gradients():
    features = torch.randn(6, 4, requires_grad=True)
    task = 2.0 * features.sum()  # gradient 2 everywhere: norm 2 * sqrt(24)
    alignment = 3.0 * features.sum() + 5.0  # gradient 3 everywhere
    reference = feature_gradient_norm(task, features)
    assert reference.item() == pytest.approx(2.0 * 24**0.5)
    assert gradient_ratio(reference, alignment, features).item() == pytest.approx(2.0 / 3.0)
    # the graph is kept: both losses still back-propagate
    (task + alignment).backward()
    assert torch.allclose(features.grad, torch.full_like(features, 5.0))


def test_ratio_is_none_for_a_loss_that_does_not_read_the_features():
    features = torch.randn(3, 2, requires_grad=True)
    other = torch.randn(3, 2, requires_grad=True)
    reference = feature_gradient_norm(features.square().sum(), features)
    assert gradient_ratio(reference, other.sum(), features) is None
    assert gradient_ratio(None, features.sum(), features) is None
    assert feature_gradient_norm(torch.tensor(1.0), features) is None


def test_ratio_is_clipped_for_a_vanishing_gradient():
    features = torch.randn(3, 2, requires_grad=True)
    reference = feature_gradient_norm(features.sum(), features)
    assert gradient_ratio(reference, 0.0 * features.sum(), features).item() == pytest.approx(MAX_RATIO)


def test_balanced_weights_in_training(domains, tmp_path):
    """CORAL's weight becomes weight x schedule x balance; DANN (adversarial) keeps its GRL schedule, unbalanced."""

    source, target, _ = domains
    trainer = make_trainer(tiny_bert(), source, target, tmp_path, method="dann+coral+mcc", coral_weight=0.5,
                           alignment_balancing="gradient")
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    # CORAL's scale follows the features'; MCC's loss is over probabilities and DANN has its GRL: neither is balanced
    assert all("coral_balance" in e and "dann_balance" not in e and "mcc_balance" not in e for e in logged)
    assert [e["mcc_weight"] for e in logged] == pytest.approx([grl_warm_start(step / 4) for step in range(4)], abs=1e-4)
    assert all(e["coral_balance"] > 1.0 for e in logged)  # CORAL's raw gradient is far below the task's
    expected = [0.5 * grl_warm_start(step / 4) * e["coral_balance"] for step, e in enumerate(logged)]
    assert [e["coral_weight"] for e in logged] == pytest.approx(expected, rel=1e-4)
    assert [e["dann_weight"] for e in logged] == [1.0] * 4

