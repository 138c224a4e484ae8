"""A sampler whose every batch holds source and target rows in a fixed proportion."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import datasets
import torch
from torch.utils.data import Sampler


class DomainBalancedSampler(Sampler[int]):
    """Yield indices in blocks of ``batch_size``: ``n_source`` source rows then ``batch_size - n_source`` target rows.

    The dataset is the mixed training set built by :func:`hfadapt.data.build_training_set`: each row has a
    domain id (``target_domain`` for target rows, ``0 .. target_domain - 1`` for source domains). An epoch is
    as many blocks as the source rows fill (the last incomplete block is dropped). With one source domain
    that is one pass over the source rows in a random order; target rows are drawn from their own random
    permutations, which restart when used up. With several source domains every block holds
    ``n_source // K`` rows of each (the remainder going to the first domains), each drawn from its own
    restarting permutation, so every domain is represented in every batch whatever their sizes. Under
    ``accelerate``/DDP whole blocks go to one process, so every rank's batch keeps the proportions.

    The order depends only on ``seed``, the epoch (:meth:`set_epoch`) and the block size: the permutations
    are drawn independently of ``batch_size``, so with one source domain two runs whose batch sizes differ by
    an integer factor (gradient accumulation 1x8 and 2x4) see the same rows in each optimizer step (without
    length grouping, whose megabatches are counted in blocks).

    With ``lengths`` (tokens per row) the blocks are also grouped by length, as ``transformers``'
    ``LengthGroupedSampler`` does for ``train_sampling_strategy="group_by_length"``, but within each domain: the
    rows of ``megabatch_blocks`` consecutive blocks are drawn as above, each domain's rows sorted by length and
    dealt back in that order (the longest source rows with the longest target rows), and the blocks of the
    megabatch shuffled. Every block keeps its proportion and the rows it holds over a megabatch are the same;
    with dynamic padding a block then pads to a length close to its rows' own, not to the longest of 32 random
    reviews.

    Args:
        domain: ``(len(dataset),)`` domain id of each row.
        batch_size: rows per block (the DataLoader's batch size).
        n_source: source rows per block, ``1 <= n_source < batch_size``.
        target_domain: the id of target rows.
        seed: base seed; epoch ``e`` uses ``seed + e``.
        lengths: ``(len(dataset),)`` tokens of each row, or ``None`` for no length grouping.
        megabatch_blocks: blocks grouped together by length (``>= 1``; 50, as ``LengthGroupedSampler``).

    Raises:
        ValueError: if there are fewer source rows than one block needs, fewer source rows per block than
            source domains, no target row, ``lengths`` of another size than ``domain``, or
            ``megabatch_blocks < 1``.
    """

    def __init__(self, domain: Sequence[int], batch_size: int, n_source: int, target_domain: int = 1, seed: int = 0,
                 lengths: Sequence[int] | None = None, megabatch_blocks: int = 50):
        domain_t = torch.as_tensor(list(domain), dtype=torch.long)
        self.source_index = torch.nonzero(domain_t != target_domain).flatten()
        self.domain_index = [torch.nonzero(domain_t == d).flatten()
                             for d in sorted(set(domain_t.tolist()) - {target_domain})]
        self.target_index = torch.nonzero(domain_t == target_domain).flatten()
        if not 1 <= n_source < batch_size:
            raise ValueError(f"n_source must be in [1, batch_size), got {n_source} of {batch_size}")
        if len(self.target_index) == 0:
            raise ValueError("the training set has no target rows")
        if len(self.source_index) < n_source:
            raise ValueError(
                f"the training set has {len(self.source_index)} source rows, fewer than the {n_source} one batch needs"
            )
        if len(self.domain_index) > n_source:
            raise ValueError(
                f"{len(self.domain_index)} source domains but only {n_source} source rows per batch: every source "
                "domain needs at least one row in each batch; raise per_device_train_batch_size"
            )
        if lengths is not None and len(lengths) != len(domain_t):
            raise ValueError(f"lengths has {len(lengths)} values for {len(domain_t)} rows")
        if megabatch_blocks < 1:
            raise ValueError(f"megabatch_blocks must be >= 1, got {megabatch_blocks}")
        self.lengths = None if lengths is None else [int(n) for n in lengths]
        self.megabatch_blocks = int(megabatch_blocks)
        self.batch_size = batch_size
        self.n_source = n_source
        self.n_target = batch_size - n_source
        self.seed = seed
        self.epoch = 0

    @property
    def num_batches(self) -> int:
        """Batches in one pass: as many as fill ``n_source`` source rows each (a short last one is dropped)."""
        return len(self.source_index) // self.n_source

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the order of ``epoch`` (called by the Trainer/accelerate loop)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_batches * self.batch_size

    @staticmethod
    def _stream(index: torch.Tensor, seed: int) -> Iterator[int]:
        """Rows of ``index`` in random permutations drawn one after another."""
        generator = torch.Generator().manual_seed(seed)
        while True:
            yield from index[torch.randperm(len(index), generator=generator)].tolist()

    def per_domain_counts(self) -> list[int]:
        """Source rows each source domain contributes to a block."""
        k = len(self.domain_index)
        return [self.n_source // k + (1 if d < self.n_source % k else 0) for d in range(k)]

    def _blocks(self) -> Iterator[list[list[int]]]:
        """Each block as its parts: the rows of each source domain, then the target rows."""
        target = self._stream(self.target_index, self.seed + self.epoch + 1_000_003)
        if len(self.domain_index) == 1:
            sources = [self._stream(self.source_index, self.seed + self.epoch)]  # one pass: num_batches fits in it
        else:
            sources = [self._stream(index, self.seed + self.epoch + 2_000_003 * d)
                       for d, index in enumerate(self.domain_index)]
        counts = [self.n_source] if len(sources) == 1 else self.per_domain_counts()
        for _ in range(self.num_batches):
            parts = [[next(stream) for _ in range(count)] for stream, count in zip(sources, counts, strict=True)]
            yield [*parts, [next(target) for _ in range(self.n_target)]]

    def _length_grouped(self, blocks: Iterator[list[list[int]]]) -> Iterator[list[list[int]]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch + 3_000_017)
        while megabatch := list(itertools.islice(blocks, self.megabatch_blocks)):
            dealt = []
            for part in zip(*megabatch, strict=True):  # one domain's rows in every block of the megabatch
                size = len(part[0])
                rows = sorted(itertools.chain(*part), key=self.lengths.__getitem__, reverse=True)
                dealt.append([rows[b * size : (b + 1) * size] for b in range(len(megabatch))])
            for b in torch.randperm(len(megabatch), generator=generator).tolist():
                yield [domain_rows[b] for domain_rows in dealt]

    def __iter__(self) -> Iterator[int]:
        blocks = self._blocks()
        if self.lengths is not None:
            blocks = self._length_grouped(blocks)
        for parts in blocks:
            yield from itertools.chain(*parts)


def row_sample(dataset: datasets.Dataset, max_rows: int, seed: int = 0) -> datasets.Dataset:
    """At most ``max_rows`` rows of ``dataset`` drawn at random (seeded, kept in dataset order; a lazy transform is
    kept). Data files are often sorted by label (the Amazon reviews are: all negative, then all positive), so the
    first rows are no sample of a domain."""
    if len(dataset) <= max_rows:
        return dataset
    generator = torch.Generator().manual_seed(seed)
    return dataset.select(sorted(torch.randperm(len(dataset), generator=generator)[:max_rows].tolist()))
