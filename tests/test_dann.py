import pytest
import torch
import torch.nn.functional as F

from hfadapt.methods.dann import DomainAdversarialLoss, DomainDiscriminator, domain_balanced_cross_entropy


def test_domain_balanced_cross_entropy_averages_per_domain_means():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, -0.5], [0.0, 3.0]])
    domain = torch.tensor([0, 0, 0, 1, 1])
    ce = F.cross_entropy(logits, domain, reduction="none")
    expected = (ce[:3].mean() + ce[3:].mean()) / 2
    assert torch.allclose(domain_balanced_cross_entropy(logits, domain, 2), expected)


def test_discriminator_shape_and_depth():
    disc = DomainDiscriminator(in_features=10, hidden_size=7, num_layers=3, num_domains=4)
    assert disc(torch.randn(5, 10)).shape == (5, 4)
    assert sum(isinstance(m, torch.nn.Linear) for m in disc) == 4
    with pytest.raises(ValueError):
        DomainDiscriminator(10, 7, 0, 2)


def test_dann_reverses_gradient_into_features_and_trains_discriminator():
    torch.manual_seed(0)
    dann = DomainAdversarialLoss(feature_dim=6, hidden_size=8, num_layers=1, dropout=0.0)
    features = torch.randn(8, 6, requires_grad=True)
    domain = torch.tensor([0] * 4 + [1] * 4)

    dann.set_grl_coefficient(0.5)
    out = dann(features, domain)
    out.loss.backward()
    reversed_grad = features.grad.clone()
    # Same loss without reversal: the feature gradient must be exactly -1/0.5 times the reversed one.
    features.grad = None
    plain = domain_balanced_cross_entropy(dann.discriminator(features), domain, 2)
    plain.backward()
    assert torch.allclose(reversed_grad, -0.5 * features.grad, atol=1e-7)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in dann.discriminator.parameters())
    assert 0.0 <= out.metrics["accuracy"].item() <= 1.0
    assert out.metrics["lambda"].item() == pytest.approx(0.5)


def test_forward_never_changes_the_coefficient():
    dann = DomainAdversarialLoss(feature_dim=4)
    dann.set_grl_coefficient(0.25)
    for _ in range(3):
        dann(torch.randn(4, 4), torch.tensor([0, 0, 1, 1]))
    assert dann.grl.coefficient == 0.25
