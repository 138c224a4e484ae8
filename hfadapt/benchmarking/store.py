"""The store of trained grid models that processes share (``sentiment_benchmark.py --members_dir``): each model kept
under what defines its run, so that a fusion fuses, and a later start reuses, only a model of the run it names.

A model is kept as ``<pair>_<seed>_<digest>.pt`` (a ``state_dict``), the digest that of its run key
(:func:`~hfadapt.benchmarking.ledger.run_key`: method, recipe, budget, backbone, data), beside a ``.json`` file
recording the key and the spec it was trained as. Keyed by the run rather than by the spec's name, a model trained
before a recipe change is not taken for the new recipe's, and a spec that names the same run as another
(``adamatch:adamatch_distribution_alignment=false`` once the recipe turns alignment off) finds its model.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

import torch

from .ledger import key_digest


class MemberStore:
    """The trained weights of grid runs, kept in ``folder`` by pair, seed and run key (see the module).

    A weights file appears whole (written aside, then renamed) after its ``.json`` record, so a process that sees it
    may load it.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def path(self, pair: str, seed: int, key: Mapping) -> Path:
        """Where the weights of the run ``key`` (a :func:`~hfadapt.benchmarking.ledger.run_key`) trained on ``pair``
        with ``seed`` are kept."""
        return self.folder / f"{pair}_{seed}_{key_digest(key)}.pt"

    def has(self, pair: str, seed: int, key: Mapping) -> bool:
        """True once the run's weights are in the store."""
        return self.path(pair, seed, key).is_file()

    def save(self, pair: str, seed: int, key: Mapping, weights: Mapping[str, torch.Tensor], spec: str) -> None:
        """Keep ``weights`` (a ``state_dict``) as the run's, replacing any kept before; ``spec`` (the method as the
        grid named it) is recorded beside them for :meth:`kept_as`.

        Raises:
            OSError: the folder cannot be created or written.
        """
        target = self.path(pair, seed, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        record = {"pair": pair, "seed": seed, "method": spec, "key": key}
        target.with_suffix(".json").write_text(json.dumps(record, sort_keys=True, default=str) + "\n")
        partial = target.with_suffix(f".{os.getpid()}.partial")
        torch.save(dict(weights), partial)
        os.replace(partial, target)  # atomic: no process reads a half-written file

    def load(self, pair: str, seed: int, key: Mapping) -> dict[str, torch.Tensor]:
        """The run's weights, on the CPU.

        Raises:
            FileNotFoundError: the store does not hold them.
        """
        return torch.load(self.path(pair, seed, key), map_location="cpu", weights_only=True)

    def wait(self, pair: str, seed: int, keys: list[Mapping], timeout_s: float, poll_s: float = 10.0) -> bool:
        """Wait until the store holds every run of ``keys`` for ``pair`` and ``seed`` (trained by other processes);
        False if one is still missing after ``timeout_s`` seconds."""
        deadline = time.monotonic() + timeout_s
        while not all(self.has(pair, seed, key) for key in keys):
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(poll_s, max(deadline - time.monotonic(), 0.0)))
        return True

    def kept_as(self, pair: str, spec: str, seed: int) -> dict | None:
        """The run key of the model kept for ``pair`` and ``seed`` that was trained as ``spec``, for scripts that
        score kept models by the grid's names without its budget; None if there is none.

        Raises:
            ValueError: the store holds several models trained as ``spec`` there (grids of other recipes or budgets
                sharing the folder): which one is meant cannot be told from the name.
        """
        keys = []
        for record in sorted(self.folder.glob(f"{pair}_{seed}_*.json")):
            kept = json.loads(record.read_text())
            if kept["pair"] == pair and kept["seed"] == seed and kept["method"] == spec \
                    and self.has(pair, seed, kept["key"]):
                keys.append(kept["key"])
        if len(keys) > 1:
            raise ValueError(f"{self.folder} keeps {len(keys)} models of {spec} on {pair} seed {seed}, trained with "
                             f"different recipes, budgets or data; score a members folder of one grid")
        return keys[0] if keys else None
