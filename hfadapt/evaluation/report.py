"""``hfadapt report RUN_DIR``: the pictures and a one-page markdown report of a run."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..methods import SOURCE_ONLY, display_name
from .negative_transfer import TARGET_SUPERVISED
from .plots import plot_feature_tsne, plot_loss_curves
from .run_files import ANALYSIS_FILE, LOG_HISTORY_FILE, REPORT_FILE, RESULTS_FILE, run_name


def write_report(run_dir: str | Path) -> Path:
    """Read ``RUN_DIR/results.json`` (written by ``hfadapt.evaluation.experiment.compare_with_source_only``) and each
    run's ``log_history.json`` / ``analysis.pt``; write ``<run>_losses.png``, ``<run>_tsne.png`` and ``report.md``
    (results table, negative-transfer and baseline-convergence warnings, proxy A-distances, the plots, the
    configuration) into ``RUN_DIR``.

    Raises:
        FileNotFoundError: if ``RUN_DIR`` has no ``results.json``, saying which command writes one.
    """
    run_dir = Path(run_dir)
    results_path = run_dir / RESULTS_FILE
    if not results_path.is_file():
        raise FileNotFoundError(f"{results_path} does not exist: run an example (examples/sentiment_transfer.py, "
                                "examples/digits_transfer.py) or `hfadapt train` with this --output_dir first")
    results = json.loads(results_path.read_text())
    lines = [f"# Run report: {results.get('source', '?')} -> {results.get('target', '?')}", ""]
    described = {k: v for k, v in results.items() if k not in ("runs", "negative_transfer", "convergence", "config")}
    lines += [f"- {k}: {v}" for k, v in described.items()] + ["", "## Results", "", format_results_table(results), ""]
    for warning in [*(results.get("negative_transfer") or []), *(results.get("convergence") or [])]:
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


def format_results_table(results: dict) -> str:
    """A markdown table: method, source validation accuracy, target accuracy, difference to source-only (points),
    with a target-supervised run the share of the gap each method closes, and with proxy A-distances measured the
    PAD between source and target features before -> after training. Without target labels: method, source
    validation accuracy, each label-free validator's score (higher is better) and the PAD."""
    if not any("target_accuracy" in run for run in results["runs"]):
        return _label_free_table(results)
    with_gap = any(run["method"] == TARGET_SUPERVISED for run in results["runs"])
    with_pad = any(run.get("proxy_a_distance_after") is not None for run in results["runs"])
    lines = [
        "| method | source val acc | target acc | target vs source-only |" + (" gap closed |" if with_gap else "")
        + (" PAD before -> after |" if with_pad else ""),
        "|---|---:|---:|---:|" + ("---:|" if with_gap else "") + ("---:|" if with_pad else ""),
    ]
    for run in results["runs"]:
        gain = run["target_gain_vs_source_only"]
        gain_text = "—" if gain is None or run["method"] == SOURCE_ONLY else f"{100 * gain:+.2f}"
        name = display_name(run["method"])
        source_val = "—" if run["method"] == TARGET_SUPERVISED else f"{100 * run['source_val_accuracy']:.2f}"
        line = f"| {name} | {source_val} | {100 * run['target_accuracy']:.2f} | {gain_text} |"
        if with_gap:
            line += " — |" if run.get("gap_closed") is None else f" {100 * run['gap_closed']:.0f}% |"
        if with_pad:
            before, after = run.get("proxy_a_distance_before"), run.get("proxy_a_distance_after")
            line += " — |" if after is None else f" {before:.2f} -> {after:.2f} |"
        lines.append(line)
    return "\n".join(lines)


def _label_free_table(results: dict) -> str:
    names = list(dict.fromkeys(name for run in results["runs"] for name in run.get("validators") or {}))
    with_pad = any(run.get("proxy_a_distance_after") is not None for run in results["runs"])
    lines = ["| method | source val acc | " + "".join(f"{n} (label-free) | " for n in names)
             + ("PAD before -> after |" if with_pad else ""),
             "|---|---:|" + "---:|" * len(names) + ("---:|" if with_pad else "")]
    for run in results["runs"]:
        name = display_name(run["method"])
        scores = run.get("validators") or {}
        line = f"| {name} | {100 * run['source_val_accuracy']:.2f} | " + "".join(
            f"{scores[n]:.4f} | " if n in scores else "— | " for n in names)
        if with_pad:
            before, after = run.get("proxy_a_distance_before"), run.get("proxy_a_distance_after")
            line += "— |" if after is None else f"{before:.2f} -> {after:.2f} |"
        lines.append(line.rstrip())
    return "\n".join(lines) + "\n\nNo target labels: no target accuracy. Higher validator scores are better."
