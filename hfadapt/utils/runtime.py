"""Process-level settings for the example scripts."""

from __future__ import annotations

import os

import torch

THREADS_ENV = "HFADAPT_NUM_THREADS"


def use_available_cpu_threads() -> int:
    """On a machine without CUDA, give each local process its share of the CPU cores; return the thread count.

    ``accelerate launch`` with no accelerate config sets ``OMP_NUM_THREADS=1`` on a GPU-less machine unless
    ``--cpu`` is passed (accelerate 1.15, ``commands/launch.py``), which halves the speed of the default
    example on a 2-core machine. This restores ``cores // local processes`` threads. ``$HFADAPT_NUM_THREADS``,
    when set, wins. With CUDA, nothing is changed.
    """
    if os.environ.get(THREADS_ENV):
        threads = int(os.environ[THREADS_ENV])
    elif torch.cuda.is_available():
        return torch.get_num_threads()
    else:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        threads = max(1, (os.cpu_count() or 1) // max(local, 1))
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads
