"""A random stream of its own, for code whose draws must not move torch's global generators.

The source-only baseline and every method forward the same batches through the backbone, so with the same seed
they draw the same dropout masks and a method differs from the baseline only by its loss: the comparison is paired
(common random numbers; ``AdaptConfig.source_only_full_batch``). A method that draws random numbers itself (UDALM's
masks, the dropout of DANN's, CDAN's and importance weighting's domain discriminators) would shift the global
generators and with them every later dropout mask of the backbone, and a shifted dropout stream alone moves target
accuracy as much as the methods do (measured in ``benchmarks/README.md``). Such code runs inside
:meth:`RandomStream.active`, which swaps in the stream's own generator states (CPU, and the CUDA device's) and
swaps the global ones back afterwards.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch


def stream_seed(seed: int, process_index: int = 0) -> int:
    """A seed for the methods' stream of run ``seed`` on process ``process_index``, derived with numpy's
    ``SeedSequence`` (``seed`` the entropy, the process index the spawn key) so that the stream is independent of
    the global generators that ``seed`` itself seeds, and of the other processes' streams.

    Raises:
        ValueError: if ``seed`` or ``process_index`` is negative.
    """
    if seed < 0 or process_index < 0:
        raise ValueError(f"seed and process index must be >= 0, got {seed} and {process_index}")
    return int(np.random.SeedSequence(seed, spawn_key=(process_index,)).generate_state(1, np.uint64)[0] >> 1)


class RandomStream:
    """Generator states of their own, seeded with ``seed``, continued from one :meth:`active` block to the next.

    Covers the CPU generator and, for tensors on a CUDA device, that device's generator. Other accelerators keep
    drawing from their global generator. :meth:`state_dict` / :meth:`load_state_dict` carry the states through a
    checkpoint (``AdaptTrainer`` saves them beside Trainer's own RNG file, so a resumed run draws what an
    uninterrupted one would).
    """

    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        self._cpu: torch.Tensor | None = None
        self._cuda: dict[int, torch.Tensor] = {}

    @contextlib.contextmanager
    def active(self, device: torch.device | str = "cpu"):
        """Within the block, torch's CPU generator (and ``device``'s, if CUDA) draw from this stream; after it, the
        global generators are exactly as before."""
        device = torch.device(device)
        cuda = device.type == "cuda"
        index = (device.index if device.index is not None else torch.cuda.current_device()) if cuda else None
        with torch.random.fork_rng(devices=[index] if cuda else [], device_type="cuda"):
            if self._cpu is None:
                torch.default_generator.manual_seed(self.seed)
            else:
                torch.set_rng_state(self._cpu)
            if cuda:
                if index in self._cuda:
                    torch.cuda.set_rng_state(self._cuda[index], index)
                else:
                    with torch.cuda.device(index):
                        torch.cuda.manual_seed(self.seed)
            try:
                yield
            finally:
                self._cpu = torch.get_rng_state()
                if cuda:
                    self._cuda[index] = torch.cuda.get_rng_state(index)

    def state_dict(self) -> dict:
        """``{"seed", "cpu", "cuda"}``: the seed and the generator states drawn so far (``None`` / empty before the
        first :meth:`active` block)."""
        return {"seed": self.seed, "cpu": self._cpu, "cuda": dict(self._cuda)}

    def load_state_dict(self, state: dict) -> None:
        """Continue the stream of :meth:`state_dict`'s ``state``."""
        self.seed, self._cpu, self._cuda = int(state["seed"]), state["cpu"], dict(state["cuda"])
