import pytest

from hfadapt.data import DomainBalancedSampler


def blocks(sampler, size):
    order = list(sampler)
    return [order[i : i + size] for i in range(0, len(order), size)]


def test_every_block_keeps_the_proportion():
    domain = [0] * 20 + [1] * 7
    sampler = DomainBalancedSampler(domain, batch_size=8, n_source=5, seed=3)
    assert len(sampler) == (20 // 5) * 8
    for block in blocks(sampler, 8):
        assert [domain[i] for i in block] == [0] * 5 + [1] * 3
    assert sorted(i for b in blocks(sampler, 8) for i in b[:5]) == list(range(20))  # one pass over the source


def test_same_rows_per_step_for_split_batches():
    domain = [0] * 16 + [1] * 16
    whole = blocks(DomainBalancedSampler(domain, 8, 4, seed=1), 8)
    halves = blocks(DomainBalancedSampler(domain, 4, 2, seed=1), 4)
    for step, block in enumerate(whole):
        assert sorted(block) == sorted(halves[2 * step] + halves[2 * step + 1])


def test_epochs_reshuffle_and_seed_reproduces():
    domain = [0] * 16 + [1] * 16
    a, b = DomainBalancedSampler(domain, 8, 4, seed=1), DomainBalancedSampler(domain, 8, 4, seed=1)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first


def test_rejects_impossible_inputs():
    with pytest.raises(ValueError, match="no target rows"):
        DomainBalancedSampler([0] * 8, 4, 2)
    with pytest.raises(ValueError, match="fewer than"):
        DomainBalancedSampler([0] + [1] * 8, 4, 2)
    with pytest.raises(ValueError, match="n_source"):
        DomainBalancedSampler([0] * 8 + [1] * 8, 4, 4)


def test_several_source_domains_are_all_in_every_block():
    domain = [0] * 30 + [1] * 6 + [2] * 10  # two source domains of very different sizes, target id 2
    sampler = DomainBalancedSampler(domain, batch_size=8, n_source=5, target_domain=2, seed=0)
    assert sampler.per_domain_counts() == [3, 2]
    assert len(sampler) == (36 // 5) * 8
    for block in blocks(sampler, 8):
        assert [domain[i] for i in block] == [0, 0, 0, 1, 1, 2, 2, 2]
    small = [i for b in blocks(sampler, 8) for i in b[3:5]]
    assert set(small) == set(range(30, 36))  # the small domain's rows restart and are all used


def test_more_source_domains_than_source_rows_per_batch():
    with pytest.raises(ValueError, match="every source domain needs at least one row"):
        DomainBalancedSampler([0, 0, 1, 1, 2, 2, 3, 3], batch_size=4, n_source=2, target_domain=3)
