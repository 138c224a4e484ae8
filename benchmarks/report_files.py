"""Where the speed benchmarks put their results: ``<output>.json`` and a ``<output>.md`` that names the run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch


def run_header(script: str, argv: list[str]) -> dict:
    """``date`` and ``machine`` (threads, torch version) of this run, and the ``command`` that made it."""
    return {"date": time.strftime("%Y-%m-%d"),
            "machine": f"{torch.get_num_threads()} threads, torch {torch.__version__}",
            "command": f"python benchmarks/{script} {' '.join(argv)}".rstrip()}


def write_results(output: str | Path, report: dict, text: str) -> None:
    """Write ``report`` (with the keys of :func:`run_header`) as JSON to ``output`` and ``text`` (the printed tables)
    to ``output`` with the ``.md`` suffix, under a line saying when, where and how they were made."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=1))
    output.with_suffix(".md").write_text(f"{report['date']}, {report['machine']}: `{report['command']}`\n{text}\n")
