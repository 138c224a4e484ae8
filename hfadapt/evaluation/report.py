"""``hfadapt report RUN_DIR``: the pictures and a one-page markdown report of a run."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .plots import plot_feature_tsne, plot_loss_curves

RESULTS_FILE = "results.json"
REPORT_FILE = "report.md"


def write_report(run_dir: str | Path) -> Path:
    """Read ``RUN_DIR/results.json`` (written by ``hfadapt.experiment.compare_with_source_only``) and each run's
    ``log_history.json`` / ``analysis.pt``; write ``<run>_losses.png``, ``<run>_tsne.png`` and ``report.md``
    (results table, negative-transfer warnings, proxy A-distances, the plots, the configuration) into ``RUN_DIR``.

    Raises:
        FileNotFoundError: if ``RUN_DIR`` has no ``results.json``, saying which command writes one.
    """
    # imported here: experiment imports the trainer, which imports this package
    from ..experiment import ANALYSIS_FILE, LOG_HISTORY_FILE, format_results_table, run_name

    run_dir = Path(run_dir)
    results_path = run_dir / RESULTS_FILE
    if not results_path.is_file():
        raise FileNotFoundError(f"{results_path} does not exist: run an example (examples/sentiment_transfer.py, "
                                "examples/digits_transfer.py) or `hfadapt train` with this --output_dir first")
    results = json.loads(results_path.read_text())
    lines = [f"# Run report: {results.get('source', '?')} -> {results.get('target', '?')}", ""]
    described = {k: v for k, v in results.items() if k not in ("runs", "negative_transfer", "config")}
    lines += [f"- {k}: {v}" for k, v in described.items()] + ["", "## Results", "", format_results_table(results), ""]
    for warning in results.get("negative_transfer") or []:
        lines.append(f"> **Warning:** {warning}")
    lines.append("")
    for run in results["runs"]:
        folder = Path(run["model_dir"]) if run.get("model_dir") else run_dir / run_name(run["method"])
        if not folder.is_dir():
            folder = run_dir / folder.name  # a moved run directory
        name = run_name(run["method"])
        lines += [f"## {name}", ""]
        history_path = folder / LOG_HISTORY_FILE
        if history_path.is_file():
            losses = plot_loss_curves(json.loads(history_path.read_text()), run_dir / f"{name}_losses.png",
                                      title=f"{name}: loss components")
            if losses:
                lines += [f"![loss components of {name}]({losses.name})", ""]
        analysis_path = folder / ANALYSIS_FILE
        if analysis_path.is_file():
            tsne = plot_feature_tsne(torch.load(analysis_path), run_dir / f"{name}_tsne.png",
                                     title=f"{name}: source-validation vs target-test features")
            lines += [f"![t-SNE of {name}]({tsne.name})", ""]
        if run.get("proxy_a_distance_after") is not None:
            lines += [f"Proxy A-distance: {run['proxy_a_distance_before']:.2f} before, "
                      f"{run['proxy_a_distance_after']:.2f} after training.", ""]
    if results.get("config"):
        lines += ["## Configuration", "", *(f"- `{k}`: `{v}`" for k, v in results["config"].items()), ""]
    path = run_dir / REPORT_FILE
    path.write_text("\n".join(lines))
    return path
