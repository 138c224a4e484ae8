import math

import pytest
import torch

from hfadapt.methods.mmd import MultiKernelMMDLoss, multi_kernel_mmd


def k1(d2, sigma2=1.0):
    """Gaussian kernel from a squared distance."""
    return math.exp(-d2 / (2.0 * sigma2))


@pytest.mark.parametrize("estimator", ["unbiased", "biased"])
def test_zero_for_identical_samples(estimator):
    x = torch.randn(16, 8)
    assert multi_kernel_mmd(x, x.clone(), estimator=estimator).item() == pytest.approx(0.0, abs=1e-6)


def test_biased_matches_hand_computed_value_with_fixed_bandwidth():
    source, target = torch.tensor([[0.0], [1.0]]), torch.tensor([[2.0]])
    expected = (k1(0) + k1(1) + k1(1) + k1(0)) / 4 + k1(0) - 2 * (k1(4) + k1(1)) / 2
    got = multi_kernel_mmd(source, target, multipliers=[1.0], base_bandwidth=1.0, estimator="biased")
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_unbiased_matches_hand_computed_values():
    # equal sizes (Gretton et al. 2012, Lemma 6): the pairs (s_i, t_i) leave the cross term
    source, target = torch.tensor([[0.0], [1.0]]), torch.tensor([[2.0], [4.0]])
    expected = k1(1) + k1(4) - 2 * (k1(16) + k1(1)) / 2
    got = multi_kernel_mmd(source, target, multipliers=[1.0], base_bandwidth=1.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # unequal sizes (eq. 3): the whole cross term
    target3 = torch.tensor([[2.0], [4.0], [5.0]])
    k_tt = (k1(4) + k1(9) + k1(1)) / 3
    k_st = (k1(4) + k1(16) + k1(25) + k1(1) + k1(9) + k1(16)) / 6
    got = multi_kernel_mmd(source, target3, multipliers=[1.0], base_bandwidth=1.0)
    assert got.item() == pytest.approx(k1(1) + k_tt - 2 * k_st, rel=1e-6)


def test_data_driven_bandwidth_and_two_kernels():
    source, target = torch.tensor([[0.0], [1.0]]), torch.tensor([[2.0]])
    # off-diagonal squared distances of {0, 1, 2}: 1, 4, 1 (each twice) -> mean 12 / 6 = 2
    base = 2.0
    expected = 0.0
    for m in (0.5, 2.0):
        s2 = m * base
        expected += ((2 * k1(0, s2) + 2 * k1(1, s2)) / 4 + k1(0, s2) - 2 * (k1(4, s2) + k1(1, s2)) / 2) / 2
    got = multi_kernel_mmd(source, target, multipliers=[0.5, 2.0], estimator="biased")
    assert got.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("estimator", ["unbiased", "biased"])
def test_grows_with_mean_shift(estimator):
    g = torch.Generator().manual_seed(0)
    source = torch.randn(64, 4, generator=g)
    noise = torch.randn(64, 4, generator=g)
    values = [
        multi_kernel_mmd(source, noise + shift, base_bandwidth=8.0, estimator=estimator).item()
        for shift in (0.0, 0.5, 1.0, 2.0)
    ]
    assert values == sorted(values) and values[-1] > 10 * abs(values[0])


def test_biased_estimate_has_the_self_similarity_offset():
    # Two samples of one distribution: the biased estimate sits near (1 - mean k)(1/n_s + 1/n_t) > 0,
    # the unbiased one near 0.
    g = torch.Generator().manual_seed(1)
    source, target = torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g)
    biased = multi_kernel_mmd(source, target, estimator="biased").item()
    unbiased = multi_kernel_mmd(source, target, estimator="unbiased").item()
    assert biased > 0.03 and abs(unbiased) < biased / 3


def test_loss_module_splits_by_domain_and_has_gradient():
    features = torch.randn(8, 3, requires_grad=True)
    domain = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    out = MultiKernelMMDLoss()(features, domain)
    assert torch.allclose(out.loss, multi_kernel_mmd(features[:4], features[4:]))
    out.loss.backward()
    assert features.grad.abs().sum() > 0


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        multi_kernel_mmd(torch.randn(1, 3), torch.randn(2, 3))
    with pytest.raises(ValueError, match="at least 1"):
        multi_kernel_mmd(torch.randn(0, 3), torch.randn(2, 3), estimator="biased")
    with pytest.raises(ValueError, match="features"):
        multi_kernel_mmd(torch.randn(2, 3), torch.randn(2, 4))
    with pytest.raises(ValueError, match="positive"):
        multi_kernel_mmd(torch.randn(2, 3), torch.randn(2, 3), multipliers=[0.0])
    with pytest.raises(ValueError, match="estimator"):
        multi_kernel_mmd(torch.randn(2, 3), torch.randn(2, 3), estimator="quadratic")


def test_linear_time_mmd_by_hand():
    from hfadapt.methods.mmd import linear_time_mmd, multi_kernel_mmd

    s, t = torch.zeros(2, 1), torch.ones(2, 1)
    # pairs (s0, s1), (t0, t1): d_ss = d_tt = 0, d_st = d_ts = 1; k(d) = exp(-d / (2 * 0.5 * 1)) = exp(-d)
    expected = 2.0 - 2.0 * math.exp(-1.0)
    assert linear_time_mmd(s, t, [0.5], base_bandwidth=1.0).item() == pytest.approx(expected)
    assert multi_kernel_mmd(s, t, [0.5], base_bandwidth=1.0, estimator="linear").item() == pytest.approx(expected)
    x = torch.randn(6, 3)
    assert multi_kernel_mmd(x, x.clone(), estimator="linear").item() == pytest.approx(0.0, abs=1e-6)


def test_linear_time_mmd_estimates_what_the_quadratic_one_does():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(4000, 4, generator=g)
    t = torch.randn(4000, 4, generator=g) + 0.5
    linear = multi_kernel_mmd(s, t, base_bandwidth=8.0, estimator="linear").item()
    quadratic = multi_kernel_mmd(s[:1000], t[:1000], base_bandwidth=8.0).item()
    assert linear == pytest.approx(quadratic, rel=0.15)
    with pytest.raises(ValueError, match="at least 2"):
        multi_kernel_mmd(s[:1], t[:1], estimator="linear")


def test_jan_refuses_the_linear_estimator():
    from hfadapt.methods.jan import joint_mmd

    with pytest.raises(ValueError, match="linear-time"):
        joint_mmd(torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 2), torch.randn(4, 2), estimator="linear")
