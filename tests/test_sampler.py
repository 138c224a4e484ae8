import pytest
import torch

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


def test_length_grouping_keeps_proportion_and_rows_and_cuts_padding():
    generator = torch.Generator().manual_seed(0)
    domain = [0] * 300 + [1] * 200 + [2] * 160  # two source domains, target id 2
    lengths = torch.randint(5, 200, (len(domain),), generator=generator).tolist()
    plain = DomainBalancedSampler(domain, 16, 10, target_domain=2, seed=4)
    grouped = DomainBalancedSampler(domain, 16, 10, target_domain=2, seed=4, lengths=lengths, megabatch_blocks=8)
    assert len(grouped) == len(plain)
    grouped_blocks, plain_blocks = blocks(grouped, 16), blocks(plain, 16)
    for block in grouped_blocks:
        assert [domain[i] for i in block] == [0] * 5 + [1] * 5 + [2] * 6
    # the same rows over each megabatch, only dealt differently
    for start in range(0, len(plain_blocks), 8):
        assert sorted(sum(grouped_blocks[start : start + 8], [])) == sorted(sum(plain_blocks[start : start + 8], []))

    def padded(bs):  # tokens after padding each block to its longest row
        return sum(len(b) * max(lengths[i] for i in b) for b in bs)

    assert padded(grouped_blocks) < 0.75 * padded(plain_blocks)
    assert list(grouped) == list(DomainBalancedSampler(domain, 16, 10, target_domain=2, seed=4, lengths=lengths,
                                                       megabatch_blocks=8))


def test_length_grouping_rejects_bad_lengths():
    with pytest.raises(ValueError, match="lengths has 3 values for 4 rows"):
        DomainBalancedSampler([0, 0, 1, 1], 2, 1, lengths=[1, 2, 3])
    with pytest.raises(ValueError, match="megabatch_blocks"):
        DomainBalancedSampler([0, 0, 1, 1], 2, 1, lengths=[1, 2, 3, 4], megabatch_blocks=0)
