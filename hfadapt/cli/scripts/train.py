"""The script ``hfadapt train`` launches through accelerate: the text or the image script, by ``--task`` or by what
the arguments name (image data or the digits domains: image; else text).

    accelerate launch -m hfadapt.cli.scripts.train --task text --config mine.yaml --max_steps 100
"""

from __future__ import annotations

import argparse
import sys

from ...data.digits import DIGITS_DOMAINS
from ...utils.distributed import end_process_group
from ..args import read_yaml, run_as_script

TASKS = ("text", "image")


def infer_task(argv: list[str]) -> str:
    """``image`` if the flags or the ``--config`` file set ``image_column_name`` or name a digits domain as
    ``source`` / ``target``, else ``text``."""
    pre = argparse.ArgumentParser(add_help=False)
    for name in ("--config", "--image_column_name", "--source", "--target"):
        pre.add_argument(name, default=None)
    known, _ = pre.parse_known_args(argv)
    values = read_yaml(known.config) if known.config else {}
    values.update({k: v for k, v in vars(known).items() if v is not None and k != "config"})
    if values.get("image_column_name"):
        return "image"
    return "image" if {str(values.get("source")), str(values.get("target"))} & set(DIGITS_DOMAINS) else "text"


def split_task(argv: list[str]) -> tuple[str, list[str]]:
    """``(task, the other arguments)``: ``--task`` taken out of ``argv``, or :func:`infer_task`.

    Raises:
        ValueError: on an unknown task.
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--task", default=None)
    known, rest = pre.parse_known_args(argv)
    task = known.task or infer_task(rest)
    if task not in TASKS:
        raise ValueError(f"--task must be one of {TASKS}, got {task!r}")
    return task, rest


def script_main(task: str):
    """The ``main`` of the script of ``task``."""
    if task == "image":
        from .image_transfer import main
    else:
        from .text_transfer import main
    return main


def main(argv: list[str] | None = None) -> dict:
    """Run the script of the task ``argv`` names (default: ``sys.argv[1:]``) with the other arguments."""
    task, rest = split_task(sys.argv[1:] if argv is None else argv)
    return script_main(task)(rest)


if __name__ == "__main__":
    run_as_script(main, prog="hfadapt train")
    end_process_group()
