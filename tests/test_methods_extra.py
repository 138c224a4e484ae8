"""Numeric unit tests of CORAL, entropy minimisation, information maximisation, MCC and CDAN on small inputs
whose values are computed by hand (plain Python arithmetic, independent of the implementations)."""

import math

import pytest
import torch
import torch.nn.functional as F

from hfadapt.methods import ALIGNMENT_METHODS
from hfadapt.methods.cdan import ConditionalDomainAdversarialLoss, multilinear_map
from hfadapt.methods.coral import coral_loss, covariance
from hfadapt.methods.dann import domain_balanced_cross_entropy
from hfadapt.methods.entropy import information_maximisation, prediction_entropy
from hfadapt.methods.jan import joint_mmd
from hfadapt.methods.mcc import minimum_class_confusion
from hfadapt.methods.mmd import multi_kernel_mmd


def h(p):
    """Entropy in nats of a probability list."""
    return -sum(x * math.log(x) for x in p if x > 0)


def test_registry_holds_every_method():
    assert {"dann", "cdan", "mmd", "jan", "coral", "mcc", "entropy", "im", "iw"} <= set(ALIGNMENT_METHODS)


def test_coral_hand_computed():
    source = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])  # covariance [[2, 0], [0, 0]]
    target = torch.tensor([[0.0, 1.0], [0.0, -1.0]])  # covariance [[0, 0], [0, 2]]
    assert torch.allclose(covariance(source), torch.tensor([[2.0, 0.0], [0.0, 0.0]]))
    assert coral_loss(source, target).item() == pytest.approx(8.0 / 16.0)
    x = torch.randn(10, 3)
    assert coral_loss(x, x + 5.0).item() == pytest.approx(0.0, abs=1e-6)  # a mean shift is not a covariance change
    with pytest.raises(ValueError):
        covariance(torch.randn(1, 3))


def test_entropy_and_information_maximisation_hand_computed():
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, math.log(3.0)]])
    assert torch.allclose(prediction_entropy(logits), torch.tensor([h([0.75, 0.25])] * 2))
    assert prediction_entropy(torch.zeros(1, 4)).item() == pytest.approx(math.log(4))
    assert information_maximisation(logits).item() == pytest.approx(h([0.75, 0.25]) - math.log(2), rel=1e-6)
    collapsed = torch.tensor([[math.log(3.0), 0.0], [math.log(3.0), 0.0]])  # both rows predict class 0
    assert information_maximisation(collapsed).item() == pytest.approx(0.0, abs=1e-6)


def test_mcc_hand_computed():
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])
    y = [[0.75, 0.25], [0.5, 0.5]]
    raw = [1 + math.exp(-h(r)) for r in y]
    w = [2 * r / sum(raw) for r in raw]
    c = [[sum(w[i] * y[i][j] * y[i][k] for i in range(2)) for k in range(2)] for j in range(2)]
    c = [[c[j][k] / sum(c[j]) for k in range(2)] for j in range(2)]
    expected = (c[0][1] + c[1][0]) / 2
    assert minimum_class_confusion(logits, temperature=1.0).item() == pytest.approx(expected, rel=1e-6)
    confident = torch.tensor([[20.0, 0.0], [0.0, 20.0]])
    assert minimum_class_confusion(confident, temperature=1.0).item() < 1e-6
    with pytest.raises(ValueError, match="temperature"):
        minimum_class_confusion(logits, temperature=0.0)


def test_multilinear_map_is_the_outer_product():
    f = torch.tensor([[1.0, 2.0, 3.0]])
    g = torch.tensor([[0.25, 0.75]])
    assert multilinear_map(f, g).tolist() == [[0.25, 0.5, 0.75, 0.75, 1.5, 2.25]]


def test_cdan_e_weights_rows_by_confidence_and_reverses_gradient():
    torch.manual_seed(0)
    cdan = ConditionalDomainAdversarialLoss(feature_dim=3, num_classes=2, hidden_size=4, num_layers=1, dropout=0.0,
                                            entropy_conditioning=True)
    cdan.set_grl_coefficient(0.5)
    features = torch.randn(4, 3, requires_grad=True)
    logits = torch.tensor([[3.0, 0.0], [0.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    domain = torch.tensor([0, 0, 1, 1])
    out = cdan(features, domain, logits)
    g = torch.softmax(logits, -1)
    d_logits = cdan.discriminator(multilinear_map(features, g))
    ce = F.cross_entropy(d_logits, domain, reduction="none")
    w = torch.tensor([1 + math.exp(-h(r)) for r in g.tolist()])
    expected = ((w[:2] * ce[:2]).sum() / w[:2].sum() + (w[2:] * ce[2:]).sum() / w[2:].sum()) / 2
    assert torch.allclose(out.loss, expected)
    out.loss.backward()
    reversed_grad = features.grad.clone()
    features.grad = None
    domain_balanced_cross_entropy(d_logits, domain, 2, w).backward()
    assert torch.allclose(reversed_grad, -0.5 * features.grad, atol=1e-7)


def test_cdan_randomized_map_for_wide_inputs():
    cdan = ConditionalDomainAdversarialLoss(feature_dim=512, num_classes=10, max_multilinear_dim=4096,
                                            randomized_dim=64)
    assert cdan.randomized and cdan.discriminator[0].in_features == 64
    out = cdan(torch.randn(6, 512), torch.tensor([0, 0, 0, 1, 1, 1]), torch.randn(6, 10))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert "random_f" not in cdan.state_dict()  # fixed projection, rebuilt from its seed, never saved
    with pytest.raises(ValueError, match="logits"):
        cdan(torch.randn(6, 512), torch.tensor([0, 0, 0, 1, 1, 1]))


def test_jan_hand_computed_and_reduces_to_mmd_for_equal_predictions():
    source, target = torch.tensor([[0.0], [1.0]]), torch.tensor([[2.0], [4.0]])
    s_logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    t_logits = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    p = [[0.5, 0.5], [0.75, 0.25], [0.5, 0.5], [0.5, 0.5]]
    x = [0.0, 1.0, 2.0, 4.0]
    base = sum((a - b) ** 2 for a in x for b in x) / 12  # mean squared distance of distinct rows
    sig2 = 0.92**2

    def k(i, j):
        kf = math.exp(-((x[i] - x[j]) ** 2) / (2 * base))
        kg = math.exp(-sum((a - b) ** 2 for a, b in zip(p[i], p[j], strict=True)) / (2 * sig2))
        return kf * kg

    expected = k(0, 1) + k(2, 3) - (k(0, 3) + k(1, 2))  # unbiased, equal sizes (Lemma 6)
    got = joint_mmd(source, target, s_logits, t_logits, multipliers=[1.0])
    assert got.item() == pytest.approx(expected, rel=1e-6)
    same = torch.zeros(2, 2)
    assert torch.allclose(joint_mmd(source, target, same, same), multi_kernel_mmd(source, target))


def test_density_ratio_weights_hand_computed():
    from hfadapt.methods.importance import density_ratio_weights

    p = torch.tensor([0.5, 0.8, 0.2, 0.99])  # odds 1, 4, 0.25, 99 -> clipped to 10
    raw = [1.0, 4.0, 0.25, 10.0]
    expected = [r / (sum(raw) / 4) for r in raw]
    assert density_ratio_weights(p, clip=10.0).tolist() == pytest.approx(expected, rel=1e-5)
    # with two source domains pooled, the balanced prior doubles every odds (before clipping)
    raw2 = [2.0, 8.0, 0.5, 10.0]
    assert density_ratio_weights(p, prior_ratio=2.0).tolist() == pytest.approx([r / (sum(raw2) / 4) for r in raw2])
    with pytest.raises(ValueError):
        density_ratio_weights(p, clip=0.5)
    # flattening: the clipped ratios to the power lambda, then mean 1; lambda 0 leaves every row at 1
    flat = [r**0.5 for r in raw]
    assert (density_ratio_weights(p, flattening=0.5).tolist()
            == pytest.approx([r / (sum(flat) / 4) for r in flat], rel=1e-5))
    assert density_ratio_weights(p, flattening=0.0).tolist() == pytest.approx([1.0] * 4)
    with pytest.raises(ValueError, match="flattening"):
        density_ratio_weights(p, flattening=1.5)


def test_importance_weighting_weights_the_task_loss_and_leaves_features_alone():
    from hfadapt.methods.importance import ImportanceWeighting

    torch.manual_seed(0)
    iw = ImportanceWeighting(feature_dim=4, hidden_size=8, num_layers=1, dropout=0.0)
    features = torch.randn(6, 4, requires_grad=True)
    domain = torch.tensor([0, 0, 0, 0, 1, 1])
    out = iw(features, domain)
    out.loss.backward()
    assert features.grad is None  # the classifier reads detached features
    assert out.source_weights.shape == (4,) and out.source_weights.mean().item() == pytest.approx(1.0)
    p_t = torch.softmax(iw.classifier(features[:4].detach()), -1)[:, 1]
    odds = (p_t / (1 - p_t)).clamp(0.1, 10)
    assert out.source_weights.tolist() == pytest.approx((odds / odds.mean()).tolist(), rel=1e-5)
    assert 0 < out.metrics["ess"].item() <= 1.0


def test_model_applies_instance_weights_to_the_source_rows():
    from conftest import tiny_bert

    from hfadapt.modeling.model import AdaptModel

    model = AdaptModel(tiny_bert())
    logits = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.3, 0.1], [5.0, 5.0]])
    labels = torch.tensor([0, 0, -100, -100])
    domain = torch.tensor([0, 0, 1, 1])
    w = torch.tensor([3.0, 1.0])
    ce = F.cross_entropy(logits[:2], labels[:2], reduction="none")
    loss, _ = model._task_loss(logits, labels, domain, w)
    assert loss.item() == pytest.approx(((3 * ce[0] + ce[1]) / 4).item())
