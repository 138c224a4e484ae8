"""Training the source-only baseline in a second process beside the method, each with half the CPU cores.

On a machine of few cores, two runs of one thread each finish somewhat sooner than the same runs one after the
other with two threads, as a second thread does not double the speed of a small encoder's step (4 to 12% less wall
time on 2 cores, ``benchmarks/side_by_side_cost.py``). A spawned process (not a fork, which would copy the parent's
thread pools) trains the baseline; it imports the model factory by name, so the factory must be picklable (a
module-level function or a ``functools.partial`` of one).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
from collections.abc import Callable, Iterator
from multiprocessing.pool import AsyncResult

import torch
from accelerate import PartialState
from transformers import TrainerCallback


def why_not_side_by_side(make_model: Callable, config, runs: list[str]) -> str | None:
    """Why the baseline cannot train beside the method in this run (a sentence), or ``None`` if it can: it needs two
    ``runs`` (the baseline and a method), a method that does not start from the baseline (two-stage), one process,
    the CPU, at least two threads and a picklable ``make_model``."""
    if len(runs) < 2:
        return "there is no baseline to train beside the method"
    if config.two_stage:
        return "adapt_from_source_only starts the method from the trained baseline"
    if PartialState().num_processes > 1:
        return "the run already trains in several processes"
    if config.device.type != "cpu":
        return f"the run trains on {config.device.type}, not on the CPU"
    if torch.get_num_threads() < 2:
        return "the process has one thread only"
    try:
        pickle.dumps(make_model)
    except (pickle.PicklingError, AttributeError, TypeError) as err:
        return f"the model factory cannot be sent to another process ({err})"
    return None


def thread_split(threads: int) -> tuple[int, int]:
    """``(this process's threads, the second process's)``: the ``threads`` (>= 2) cut in two, the odd one here."""
    return threads - threads // 2, threads // 2


def _call_with_threads(threads: int, call: bytes):
    """In the second process: ``fn(**kwargs)`` with ``threads`` torch threads, ``call`` the pickled
    ``(fn, kwargs)``."""
    torch.set_num_threads(threads)
    fn, kwargs = pickle.loads(call)
    return fn(**kwargs)


@contextlib.contextmanager
def second_process(threads: int, fn: Callable, **kwargs) -> Iterator[AsyncResult]:
    """Start ``fn(**kwargs)`` in a spawned process with ``threads`` torch threads and yield its ``AsyncResult``
    (``get()`` returns the result or re-raises what the call raised; ``fn``, ``kwargs`` and the result travel by
    pickle). On leaving the block the process ends; leaving it on an error stops the process, finished or not, so
    that an error here does not wait for the other run.

    ``fn`` and ``kwargs`` are pickled here, before this returns: the pool would pickle them later in a thread of
    its own, while this process goes on, and a ``TrainingArguments`` built meanwhile resets accelerate's shared
    ``PartialState``, which a pickled configuration holds (a baseline configuration sent without its state fails
    with ``no attribute 'process_index'``).

    Raises:
        pickle.PicklingError, AttributeError, TypeError: ``fn`` or ``kwargs`` cannot be pickled.
    """
    call = pickle.dumps((fn, kwargs))
    pool = multiprocessing.get_context("spawn").Pool(1)
    try:
        yield pool.apply_async(_call_with_threads, (threads, call))
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


class ThreadsBackWhenDone(TrainerCallback):
    """Give this process's training ``threads`` torch threads again, at the first step that begins after the run
    in the second process (``other``) has ended, so that its cores do not idle while this run goes on. It acts in
    the training loop's thread, as ``torch.set_num_threads`` must."""

    def __init__(self, other: AsyncResult, threads: int):
        self.other, self.threads = other, threads

    def on_step_begin(self, args, state, control, **kwargs):
        if self.other is not None and self.other.ready():
            torch.set_num_threads(self.threads)
            self.other = None
