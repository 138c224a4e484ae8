import math

import pytest
import torch

from hfadapt.methods.mmd import MultiKernelMMDLoss, multi_kernel_mmd


def test_zero_for_identical_samples():
    x = torch.randn(16, 8)
    assert multi_kernel_mmd(x, x.clone()).item() == pytest.approx(0.0, abs=1e-6)


def test_matches_hand_computed_value_with_fixed_bandwidth():
    source = torch.tensor([[0.0], [1.0]])
    target = torch.tensor([[2.0]])
    # one Gaussian kernel, sigma^2 = 1: k(x, y) = exp(-(x - y)^2 / 2)
    k = lambda d2: math.exp(-d2 / 2.0)  # noqa: E731
    k_ss = (k(0) + k(1) + k(1) + k(0)) / 4
    k_tt = k(0)
    k_st = (k(4) + k(1)) / 2
    expected = k_ss + k_tt - 2 * k_st
    got = multi_kernel_mmd(source, target, multipliers=[1.0], base_bandwidth=1.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_matches_hand_computed_value_with_data_driven_bandwidth_and_two_kernels():
    source = torch.tensor([[0.0], [1.0]])
    target = torch.tensor([[2.0]])
    # off-diagonal squared distances of {0, 1, 2}: 1, 4, 1 (each twice) -> mean 12 / 6 = 2
    base = 2.0
    expected = 0.0
    for m in (0.5, 2.0):
        k = lambda d2, m=m: math.exp(-d2 / (2.0 * m * base))  # noqa: E731
        expected += ((2 * k(0) + 2 * k(1)) / 4 + k(0) - 2 * (k(4) + k(1)) / 2) / 2
    got = multi_kernel_mmd(source, target, multipliers=[0.5, 2.0])
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_grows_with_mean_shift():
    g = torch.Generator().manual_seed(0)
    source = torch.randn(64, 4, generator=g)
    noise = torch.randn(64, 4, generator=g)
    values = [multi_kernel_mmd(source, noise + shift, base_bandwidth=8.0).item() for shift in (0.0, 0.5, 1.0, 2.0)]
    assert values == sorted(values) and values[-1] > 10 * values[0]


def test_loss_module_splits_by_domain_and_has_gradient():
    features = torch.randn(8, 3, requires_grad=True)
    domain = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    out = MultiKernelMMDLoss()(features, domain)
    expected = multi_kernel_mmd(features[:4], features[4:])
    assert torch.allclose(out.loss, expected)
    out.loss.backward()
    assert features.grad.abs().sum() > 0


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        multi_kernel_mmd(torch.randn(0, 3), torch.randn(2, 3))
    with pytest.raises(ValueError, match="features"):
        multi_kernel_mmd(torch.randn(2, 3), torch.randn(2, 4))
    with pytest.raises(ValueError, match="positive"):
        multi_kernel_mmd(torch.randn(2, 3), torch.randn(2, 3), multipliers=[0.0])
