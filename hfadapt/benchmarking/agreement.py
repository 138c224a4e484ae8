"""How well a label-free validator agrees with target accuracy across the models of a benchmark grid.

A grid's rule chooses the recipe's method by a validator's mean score (:func:`~hfadapt.benchmarking.ledger.
validator_table`), on the assumption that within a pair and seed the validator ranks the models as target accuracy
does. This module measures that assumption on the rows of a finished grid, per pair-seed block that holds every
model:

- the Spearman rank correlation between the validator's scores and the models' target accuracies (mean over
  blocks);
- whether the validator puts each model on the same side of source-only as target accuracy does (sign agreement);
- the target accuracy of the model the validator picks in each block, against source-only and against the oracle
  pick that reads target labels.

Source-validation accuracy (``source_val_accuracy``) is scored beside the label-free validators as ``source_val``.
Target labels are read here only to measure the validators, never to choose.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy.stats import spearmanr

from ..methods import SOURCE_ONLY

SOURCE_VAL = "source_val"
"""The name under which a row's source-validation accuracy is scored as a validator."""


@dataclass
class Agreement:
    """One validator's agreement with target accuracy over ``blocks`` pair-seed blocks (accuracies in points).

    Attributes:
        validator: its name (``source_val``: source-validation accuracy).
        blocks: the blocks that hold every model with this validator's score.
        spearman: mean over blocks of the rank correlation with target accuracy (``nan`` where no block has two
            distinct scores and two distinct accuracies).
        agree, compared: of the ``compared`` (model, block) pairs whose target accuracy differs from source-only's,
            how many the validator puts on the same side of source-only.
        picked_gain, picked_se: mean (and standard error) over blocks of the picked model's target accuracy minus
            source-only's.
        oracle_gain: the same for the model with the best target accuracy of each block.
    """

    validator: str
    blocks: int
    spearman: float
    agree: int
    compared: int
    picked_gain: float
    picked_se: float
    oracle_gain: float


def _scores(row: dict) -> dict[str, float]:
    """A row's validator scores, its source-validation accuracy among them as ``source_val``."""
    scores = dict(row.get("validators") or {})
    if row.get("source_val_accuracy") is not None:
        scores[SOURCE_VAL] = row["source_val_accuracy"]
    return scores


def validator_agreement(rows: list[dict], methods: list[str]) -> list[Agreement]:
    """Each validator's :class:`Agreement` with target accuracy over the blocks holding every one of ``methods``
    (source-only, ``"none"``, among them) with a target accuracy and that validator's score. The latest row of a
    (pair, seed, method) counts, as in the tables. Picks break ties by the order of ``methods``.

    Raises:
        ValueError: ``methods`` without source-only or with fewer than two models.
    """
    if SOURCE_ONLY not in methods or len(methods) < 2:
        raise ValueError(f"validator agreement compares models with source-only: give {SOURCE_ONLY!r} and at least "
                         f"one other method, got {methods}")
    latest = {(r["pair"], r["seed"], r["method"]): r for r in rows
              if r.get("method") in methods and r.get("target_accuracy") is not None}
    names = sorted({name for r in latest.values() for name in _scores(r)})
    results = []
    for name in names:
        blocks = sorted({(p, s) for p, s, _ in latest
                         if all(name in _scores(latest.get((p, s, m), {})) for m in methods)})
        if not blocks:
            continue
        rhos, picked, oracle, agree, compared = [], [], [], 0, 0
        for pair, seed in blocks:
            block = [latest[(pair, seed, m)] for m in methods]
            scores = [_scores(r)[name] for r in block]
            targets = [100 * r["target_accuracy"] for r in block]
            base = targets[methods.index(SOURCE_ONLY)]
            base_score = scores[methods.index(SOURCE_ONLY)]
            if len(set(scores)) > 1 and len(set(targets)) > 1:
                rhos.append(spearmanr(scores, targets).statistic)
            picked.append(targets[scores.index(max(scores))] - base)
            oracle.append(max(targets) - base)
            for score, target in zip(scores, targets, strict=True):
                if target != base:
                    compared += 1
                    agree += (score > base_score) == (target > base)
        se = statistics.stdev(picked) / math.sqrt(len(picked)) if len(picked) > 1 else math.nan
        results.append(Agreement(name, len(blocks), statistics.fmean(rhos) if rhos else math.nan, agree, compared,
                                 statistics.fmean(picked), se, statistics.fmean(oracle)))
    return results


def agreement_table(agreements: list[Agreement]) -> str:
    """A markdown table of :func:`validator_agreement`'s results, one row per validator."""
    lines = ["| validator | blocks | Spearman rho (mean over blocks) | same side of source-only as target | "
             "picked model vs source-only (± s.e.) | oracle pick vs source-only |",
             "|---|---:|---:|---:|---:|---:|"]
    for a in agreements:
        lines.append(f"| {a.validator} | {a.blocks} | {a.spearman:+.2f} | {a.agree} of {a.compared} | "
                     f"{a.picked_gain:+.2f} ± {a.picked_se:.2f} | {a.oracle_gain:+.2f} |")
    return "\n".join(lines)
