import math

import pytest
import torch

from hfadapt.methods.grl import GradientReversalLayer, grl_constant, grl_warm_start, reverse_gradient


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
