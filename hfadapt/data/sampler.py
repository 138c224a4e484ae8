"""A sampler whose every batch holds source and target rows in a fixed proportion."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class DomainBalancedSampler(Sampler[int]):
    """Yield indices in blocks of ``batch_size``: ``n_source`` source rows then ``batch_size - n_source`` target rows.

    The dataset is the mixed training set built by :func:`hfadapt.data.build_training_set`: each row has a
    domain id (``target_domain`` for target rows). An epoch is one pass over the labelled source rows in a
    random order (the last incomplete block is dropped); target rows are drawn from their own random
    permutations, which restart when used up. Under ``accelerate``/DDP whole blocks go to one process, so
    every rank's batch keeps the proportion.

    The order depends only on ``seed``, the epoch (:meth:`set_epoch`) and the block size: the source and
    target permutations are drawn independently of ``batch_size``, so two runs whose batch sizes differ by an
    integer factor (gradient accumulation 1x8 and 2x4) see the same rows in each optimizer step.

    Args:
        domain: ``(len(dataset),)`` domain id of each row.
        batch_size: rows per block (the DataLoader's batch size).
        n_source: source rows per block, ``1 <= n_source < batch_size``.
        target_domain: the id of target rows.
        seed: base seed; epoch ``e`` uses ``seed + e``.

    Raises:
        ValueError: if there are fewer source rows than one block needs, or no target row.
    """

    def __init__(self, domain: Sequence[int], batch_size: int, n_source: int, target_domain: int = 1, seed: int = 0):
        domain_t = torch.as_tensor(list(domain), dtype=torch.long)
        self.source_index = torch.nonzero(domain_t != target_domain).flatten()
        self.target_index = torch.nonzero(domain_t == target_domain).flatten()
        if not 1 <= n_source < batch_size:
            raise ValueError(f"n_source must be in [1, batch_size), got {n_source} of {batch_size}")
        if len(self.target_index) == 0:
            raise ValueError("the training set has no target rows")
        if len(self.source_index) < n_source:
            raise ValueError(
                f"the training set has {len(self.source_index)} source rows, fewer than the {n_source} one batch needs"
            )
        self.batch_size = batch_size
        self.n_source = n_source
        self.n_target = batch_size - n_source
        self.seed = seed
        self.epoch = 0

    @property
    def num_batches(self) -> int:
        return len(self.source_index) // self.n_source

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the order of ``epoch`` (called by the Trainer/accelerate loop)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_batches * self.batch_size

    def _target_stream(self, generator: torch.Generator) -> Iterator[int]:
        while True:
            yield from self.target_index[torch.randperm(len(self.target_index), generator=generator)].tolist()

    def __iter__(self) -> Iterator[int]:
        g_source = torch.Generator().manual_seed(self.seed + self.epoch)
        g_target = torch.Generator().manual_seed(self.seed + self.epoch + 1_000_003)
        source = self.source_index[torch.randperm(len(self.source_index), generator=g_source)].tolist()
        target = self._target_stream(g_target)
        for b in range(self.num_batches):
            yield from source[b * self.n_source : (b + 1) * self.n_source]
            for _ in range(self.n_target):
                yield next(target)
