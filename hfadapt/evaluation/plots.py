"""Pictures of a run: t-SNE of source and target features before and after adaptation, and the loss curves.

Drawn with matplotlib (Agg backend, PNG files) and scikit-learn's t-SNE (van der Maaten & Hinton, JMLR 2008).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402

DOMAIN_COLOURS = {"source": "tab:blue", "target": "tab:orange"}


def save_figure(fig, path: str | Path, title: str = "") -> Path:
    """Give ``fig`` its title, write it as a PNG (110 dpi) to ``path``, close it and return the path."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def tsne_embedding(source: torch.Tensor, target: torch.Tensor, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """2-D t-SNE of ``(n_s, F)`` source and ``(n_t, F)`` target features embedded together; returns
    ``(n_s, 2)`` and ``(n_t, 2)``. Perplexity is ``min(30, (n - 1) / 3)`` so small sets work."""
    x = torch.cat([source, target]).double().numpy()
    perplexity = float(max(1.0, min(30.0, (len(x) - 1) / 3)))
    z = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    return z[: len(source)], z[len(source):]


def plot_feature_tsne(analysis: dict, path: str | Path, title: str = "") -> Path:
    """Write a PNG: one column per snapshot (``before``, ``after`` training), the top row coloured by domain, the
    bottom by class (where labels are known).

    Args:
        analysis: what ``hfadapt.evaluation.experiment.save_run_analysis`` writes: ``{"features": {when: {"source",
            "target"}}, "labels": {"source", "target"}, "label_names"}``.
        path: the PNG to write.
    """
    snapshots = analysis["features"]
    labels, names = analysis.get("labels") or {}, analysis.get("label_names") or []
    fig, axes = plt.subplots(2, len(snapshots), figsize=(5 * len(snapshots), 9), squeeze=False)
    for col, (when, feats) in enumerate(snapshots.items()):
        zs, zt = tsne_embedding(feats["source"], feats["target"])
        ax = axes[0, col]
        ax.scatter(zs[:, 0], zs[:, 1], s=6, alpha=0.6, c=DOMAIN_COLOURS["source"], label="source")
        ax.scatter(zt[:, 0], zt[:, 1], s=6, alpha=0.6, c=DOMAIN_COLOURS["target"], label="target")
        ax.set_title(f"{when} training: by domain")
        ax.legend(loc="best", markerscale=3)
        ax = axes[1, col]
        for domain, z, marker in (("source", zs, "o"), ("target", zt, "x")):
            y = labels.get(domain)
            if y is None:
                continue
            y = y[: len(z)].numpy()
            for k in np.unique(y):
                name = names[k] if k < len(names) else str(k)
                ax.scatter(z[y == k, 0], z[y == k, 1], s=6, alpha=0.6, marker=marker, c=f"C{int(k) % 10}",
                           label=f"{domain}: {name}")
        ax.set_title(f"{when} training: by class (o source, x target)")
        ax.legend(loc="best", markerscale=3, fontsize="small")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, path, title)


def loss_components(log_history: list[dict]) -> dict[str, tuple[list[int], list[float]]]:
    """``{key: (steps, values)}`` of every logged loss component (``loss``, ``loss_task``, ``loss_<method>``,
    ``loss_task_<domain>``) in a Trainer log history; evaluation and summary entries are skipped."""
    curves: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    for entry in log_history:
        if "loss" not in entry or "step" not in entry:
            continue
        for key, value in entry.items():
            if key.startswith("loss") and isinstance(value, int | float):
                curves[key][0].append(entry["step"])
                curves[key][1].append(float(value))
    return dict(curves)


def plot_loss_curves(log_history: list[dict], path: str | Path, title: str = "") -> Path | None:
    """Write a PNG of each loss component over optimizer steps (one panel per component); ``None`` if the
    history has no logged loss."""
    curves = loss_components(log_history)
    if not curves:
        return None
    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.2), squeeze=False)
    for ax, (key, (steps, values)) in zip(axes[0], sorted(curves.items()), strict=True):
        ax.plot(steps, values, marker=".")
        ax.set_title(key)
        ax.set_xlabel("optimizer step")
    return save_figure(fig, path, title)
