import math

import pytest
import torch

from hfadapt.methods.grl import GradientReversalLayer, cosine_ramp, grl_constant, grl_warm_start, reverse_gradient


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0, 2.5])
def test_reverse_gradient_is_minus_lambda_times_gradient(lam):
    x = torch.randn(5, 3, requires_grad=True)
    upstream = torch.randn(5, 3)
    y = reverse_gradient(x, lam)
    assert torch.equal(y, x)
    y.backward(upstream)
    assert torch.equal(x.grad, -lam * upstream)


def test_layer_uses_the_coefficient_it_was_set_to():
    layer = GradientReversalLayer(0.0)
    layer.set_coefficient(0.7)
    x = torch.ones(2, 2, requires_grad=True)
    (layer(x) * 3.0).sum().backward()
    assert torch.allclose(x.grad, torch.full((2, 2), -2.1))
    with pytest.raises(ValueError, match="coefficient"):
        layer.set_coefficient(-1.0)
    with pytest.raises(ValueError, match="coefficient"):
        layer.set_coefficient(float("nan"))


def test_warm_start_schedule_follows_ganin_formula():
    for p in [0.0, 0.1, 0.25, 0.5, 0.9, 1.0]:
        expected = 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0
        assert grl_warm_start(p) == pytest.approx(expected, abs=1e-12)
        assert grl_warm_start(p, max_lambda=0.5, gamma=5.0) == pytest.approx(
            0.5 * (2.0 / (1.0 + math.exp(-5.0 * p)) - 1.0), abs=1e-12
        )
    assert grl_warm_start(0.0) == 0.0
    assert grl_warm_start(2.0) == grl_warm_start(1.0)  # progress is clipped
    assert grl_constant(0.0, max_lambda=0.3) == 0.3


def test_cosine_ramp_is_adamatchs_half_cosine_over_the_first_half_of_training():
    # 1/2 - cos(2 pi p) / 2 by hand: cos(pi/3) = 1/2, cos(pi/2) = 0, cos(2 pi/3) = -1/2, cos(pi) = -1
    for p, expected in [(0.0, 0.0), (1 / 6, 0.25), (0.25, 0.5), (1 / 3, 0.75), (0.5, 1.0), (0.8, 1.0), (1.0, 1.0)]:
        assert cosine_ramp(p) == pytest.approx(expected, abs=1e-12)
    assert cosine_ramp(0.25, max_lambda=0.4) == pytest.approx(0.2, abs=1e-12)
    assert cosine_ramp(-1.0) == 0.0 and cosine_ramp(2.0) == 1.0  # progress is clipped
    assert cosine_ramp(1 / 12) < grl_warm_start(1 / 12) / 5  # slower at the start than Ganin et al.'s
