"""Proxy A-distance and negative-transfer warnings on inputs whose answer is known."""

import pytest
import torch

from hfadapt.evaluation import negative_transfer_warnings, proxy_a_distance


def test_pad_of_identical_and_separable_domains():
    g = torch.Generator().manual_seed(0)
    same = proxy_a_distance(torch.randn(200, 5, generator=g), torch.randn(200, 5, generator=g))
    assert same < 0.3  # a classifier cannot beat chance by much: error near 0.5
    apart = proxy_a_distance(torch.randn(200, 5, generator=g), torch.randn(200, 5, generator=g) + 10.0)
    assert apart == 2.0  # perfectly separable: error 0
    middle = proxy_a_distance(torch.randn(200, 5, generator=g), torch.randn(200, 5, generator=g) + 0.5)
    assert same < middle < apart
    with pytest.raises(ValueError, match="at least 4 rows"):
        proxy_a_distance(torch.randn(3, 5), torch.randn(10, 5))


def test_negative_transfer_with_and_without_target_labels():
    runs = [{"method": "none", "target_accuracy": 0.80}, {"method": "dann", "target_accuracy": 0.78},
            {"method": "mmd", "target_accuracy": 0.81}]
    (warning,) = negative_transfer_warnings(runs)
    assert warning.startswith("negative transfer: dann is 2.00 points below")
    assert negative_transfer_warnings(runs, tolerance=0.03) == []
    unlabelled = [{"method": "none", "target_accuracy": None, "validators": {"snd": 1.0, "dev": -0.5}},
                  {"method": "dann", "target_accuracy": None, "validators": {"snd": 0.9, "dev": -0.4}}]
    (warning,) = negative_transfer_warnings(unlabelled)
    assert "no target labels" in warning and "snd" in warning and "dev" not in warning
    assert negative_transfer_warnings([{"method": "dann", "target_accuracy": 0.5}]) == []  # no baseline
