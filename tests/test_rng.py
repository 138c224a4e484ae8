import pytest
import torch
from helpers import assert_same_parameters, backbone_after_training

from hfadapt.utils.rng import RandomStream, stream_seed


def test_a_stream_leaves_the_global_generator_alone_and_continues_where_it_stopped():
    torch.manual_seed(0)
    expected_global = torch.rand(3)
    torch.manual_seed(0)
    stream = RandomStream(seed=7)
    with stream.active():
        first = torch.rand(3)
    with stream.active():
        second = torch.rand(3)
    assert torch.equal(torch.rand(3), expected_global)  # as if the stream had never drawn
    torch.manual_seed(7)
    assert torch.equal(torch.cat([first, second]), torch.rand(6))  # one stream seeded 7, continued


def test_a_stream_restores_the_global_generator_after_an_error():
    torch.manual_seed(0)
    state = torch.get_rng_state()
    with pytest.raises(RuntimeError), RandomStream(1).active():
        torch.rand(2)
        raise RuntimeError("boom")
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("method, neutral", [("dann", {"dann_weight": 0.0}), ("cdan", {"cdan_weight": 0.0}),
                                             ("iw", {"iw_weight": 0.0, "iw_clip": 1.0})])
def test_a_method_head_with_dropout_does_not_move_the_backbones_dropout(tmp_path, method, neutral):
    # with no effect on the loss (weight 0; importance weights clipped to 1) the backbone trains exactly as the
    # source-only baseline: the discriminator's dropout draws from the heads' own stream
    baseline = backbone_after_training(tmp_path, method="none")
    assert_same_parameters(baseline, backbone_after_training(tmp_path, method=method, **neutral))


def test_a_stream_continues_from_its_state_dict():
    stream = RandomStream(seed=3)
    with stream.active():
        torch.rand(2)
    copy = RandomStream()
    copy.load_state_dict(stream.state_dict())
    with stream.active():
        expected = torch.rand(4)
    with copy.active():
        assert torch.equal(torch.rand(4), expected)


def test_stream_seeds_differ_from_the_run_seed_and_between_processes():
    seeds = [stream_seed(42, rank) for rank in range(4)]
    assert len(set(seeds)) == 4 and 42 not in seeds and all(0 <= s < 2**63 for s in seeds)
    assert stream_seed(42, 1) == seeds[1]  # deterministic
    with pytest.raises(ValueError, match=">= 0"):
        stream_seed(-1)
