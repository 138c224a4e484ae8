"""Batch statistics under data parallelism: gather features from every process, with gradients flowing back.

Under DDP each process holds ``B / N`` rows of a global batch of ``B``. A loss that is a mean over rows (the task
cross-entropy, DANN's discriminator loss, entropy) is fine computed locally: DDP averages the gradients, which
gives the gradient of the global mean. A loss that is a statistic of the whole batch (MK-MMD, JAN, CORAL, MCC's
class-confusion matrix, IM's mean prediction) is not: on ``B / N`` rows it is another, noisier estimator. Methods
that set ``AlignmentMethod.batch_statistic`` therefore see the rows of every process:
:func:`gather_rows` concatenates them with ``torch.distributed.nn.functional.all_gather``, whose backward sums
each process's gradient for a process's rows (reduce-scatter; all-to-all on gloo). Every process computes the
same global loss ``L``; the gradient reaching its own rows is ``N * dL/dx``, and DDP's average over the ``N``
processes turns that into exactly ``dL/dtheta``, what one process with the whole batch computes.

Every process must hold the same number of rows (the trainer's sampler and ``dataloader_drop_last`` ensure it).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.distributed.nn.functional import all_gather as all_gather_with_grad


def world_size() -> int:
    """Processes in the default group (1 when ``torch.distributed`` is not initialised)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """``(n, ...)`` on each of ``N`` processes -> ``(N * n, ...)``, process 0's rows first; differentiable.

    Tensors that do not require grad (domain ids) are gathered without autograd. With one process, ``x`` itself.
    """
    if world_size() == 1:
        return x
    if x.requires_grad:
        return torch.cat(all_gather_with_grad(x.contiguous()), dim=0)
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def sum_over_processes(x: torch.Tensor) -> torch.Tensor:
    """Sum of a (detached) tensor over processes; ``x`` itself with one process."""
    if world_size() == 1:
        return x
    x = x.detach().clone()
    dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


def end_process_group() -> None:
    """Destroy the default process group, if any, before the interpreter exits (gloo otherwise aborts at exit in
    about 1 run in 6 with "terminate called without an active exception", notes/hf-5x-facts.md)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # a process that finished early must not tear down while the main one still writes
        dist.destroy_process_group()
