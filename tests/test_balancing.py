import pytest
import torch
from conftest import tiny_bert
from helpers import make_trainer
from torch import nn

from hfadapt.methods.dann import DomainAdversarialLoss
from hfadapt.methods.grl import GradientScale, grl_warm_start, reverse_gradient
from hfadapt.modeling.balancing import MAX_RATIO, feature_gradient_norm, gradient_ratio, reversal_factor
from hfadapt.modeling.model import AdaptModel


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


def test_late_gradient_scale_applies_the_factor_set_after_the_forward():
    x = torch.randn(3, 2, requires_grad=True)
    scale = GradientScale()
    y = scale(x)
    assert torch.equal(y, x)
    scale.factor = torch.tensor(0.25)  # known only now, before the backward
    (2.0 * y).sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, 0.5))


def test_reversal_factor_by_hand():
    features = torch.randn(6, 4, requires_grad=True)
    reference = feature_gradient_norm(2.0 * features.sum(), features)  # 2 * sqrt(24)
    adversarial = 3.0 * reverse_gradient(features, 0.5).sum()  # feature gradient -1.5 everywhere
    factor = reversal_factor(reference, adversarial, features, coefficient=0.5)
    # s * 1.5 * sqrt(24) = 0.5 * 2 * sqrt(24)
    assert factor.item() == pytest.approx(1.0 / 1.5)
    assert reversal_factor(reference, adversarial, features, coefficient=0.0) is None
    assert reversal_factor(None, adversarial, features, coefficient=0.5) is None


def _feature_gradient(model: AdaptModel, batch: dict, coefficient: float) -> tuple[torch.Tensor, dict]:
    """Gradient on the alignment features and the discriminator's parameter gradients after one backward."""
    model.zero_grad()
    model.set_grl_coefficient(coefficient)
    captured = {}
    run = model._run

    def run_and_hook(*args, **kwargs):
        outputs, features = run(*args, **kwargs)
        # the last call is the backward pass (balancing's autograd.grad calls fire the hook first)
        features.register_hook(lambda grad: captured.update(grad=grad.clone()))
        return outputs, features

    model._run = run_and_hook
    try:
        model(**batch).loss.backward()
    finally:
        del model._run
    disc = {name: p.grad.clone() for name, p in model.methods.named_parameters()}
    return captured["grad"], disc


def test_balanced_reversal_gets_lambda_times_the_task_gradient_and_leaves_the_discriminator_alone():
    """With ``alignment_balancing="gradient"`` DANN's reversed feature gradient has lambda times the task's norm,
    points where the fixed one does, and the discriminator's parameter gradients are the fixed run's."""

    def model(balancing: str) -> AdaptModel:
        torch.manual_seed(0)
        backbone = tiny_bert(dropout=0.0)
        dann = DomainAdversarialLoss(backbone.config.hidden_size, hidden_size=8, num_layers=1, dropout=0.0)
        return AdaptModel(backbone, nn.ModuleDict({"dann": dann}), alignment_balancing=balancing).train()

    fixed, balanced = model("fixed"), model("gradient")
    batch = {
        "input_ids": torch.randint(5, 60, (8, 7)),
        "attention_mask": torch.ones(8, 7, dtype=torch.long),
        "labels": torch.tensor([0, 1, 1, 0, -100, -100, -100, -100]),
        "domain": torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]),
    }
    task_only, _ = _feature_gradient(fixed, batch, 0.0)
    fixed_total, fixed_disc = _feature_gradient(fixed, batch, 0.3)
    balanced_total, balanced_disc = _feature_gradient(balanced, batch, 0.3)
    fixed_reversed, balanced_reversed = fixed_total - task_only, balanced_total - task_only
    assert balanced_reversed.norm().item() == pytest.approx(0.3 * task_only.norm().item(), rel=1e-4)
    cosine = torch.nn.functional.cosine_similarity(fixed_reversed.flatten(), balanced_reversed.flatten(), dim=0)
    assert cosine.item() == pytest.approx(1.0, abs=1e-5)
    for name, grad in fixed_disc.items():
        assert torch.allclose(grad, balanced_disc[name], atol=1e-7), name


def test_balanced_weights_in_training(domains, tmp_path):
    """CORAL's weight becomes weight x schedule x balance; DANN's reversed gradient is balanced once its GRL
    coefficient is above 0; MCC (a bounded loss over probabilities) keeps its scheduled weight."""

    source, target, _ = domains
    trainer = make_trainer(tiny_bert(), source, target, tmp_path, method="dann+coral+mcc", coral_weight=0.5,
                           alignment_balancing="gradient")
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert all("coral_balance" in e and "mcc_balance" not in e for e in logged)
    assert [("dann_balance" in e) for e in logged] == [e["dann_lambda"] > 0 for e in logged]
    assert any("dann_balance" in e for e in logged)
    assert [e["mcc_weight"] for e in logged] == pytest.approx([grl_warm_start(step / 4) for step in range(4)], abs=1e-4)
    assert all(e["coral_balance"] > 1.0 for e in logged)  # CORAL's raw gradient is far below the task's
    expected = [0.5 * grl_warm_start(step / 4) * e["coral_balance"] for step, e in enumerate(logged)]
    assert [e["coral_weight"] for e in logged] == pytest.approx(expected, rel=1e-4)
    assert [e["dann_weight"] for e in logged] == [1.0] * 4
