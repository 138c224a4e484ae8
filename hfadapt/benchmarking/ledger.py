"""The benchmark results ledger: one JSON line per run (pair, method, seed) in a ``.jsonl`` file.

A row records the run's scores beside its ``budget`` (steps, tokens, batch, learning rate, ...: :func:`budget_of`),
its ``recipe`` (the adaptation settings the method depends on: :func:`recipe_of`) and its ``environment``. A table
is built from the rows that match the current budget and recipe (:func:`matching_rows`), so a grid can be run in
pieces, resumed, and shared between processes (:func:`claim`), and retuning one method voids only its own rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import statistics
from pathlib import Path

from ..methods import SOURCE_ONLY, display_name
from ..trainer.config import AdaptConfig
from .fusion import Fusion

DEFAULTS_BEFORE_RECIPE = {"grl_max_lambda": 1.0, "alignment_balancing": "fixed", "mmd_weight": 1.0, "jan_weight": 1.0,
                          "coral_weight": 1.0, "iw_flattening": 1.0, "udalm_weight": 0.1}
"""``AdaptConfig``'s defaults before they became the recipe's: what a row that predates one of these fields ran
with."""
BUDGET_KEYS = ("max_steps", "max_length", "max_train_samples", "max_eval_samples", "per_device_train_batch_size",
               "learning_rate", "train_sampling_strategy")
"""What a run's budget records: rows of another budget are not compared."""
CONVERGENCE_KEYS = ("eval_steps", "early_stopping_patience", "min_steps")
"""Budget keys of a run that trains until source validation stops rising (recorded only with ``eval_steps``)."""
BUDGET_SET_FIELDS = ("early_stopping_patience", "early_stopping_min_steps")
"""``AdaptConfig`` fields the benchmark's budget sets (``CONVERGENCE_KEYS``; off in the quick screen), whatever the
recipe says: rows compare them through their budget, not their recipe."""


def load_results(path: Path) -> list[dict]:
    """The rows of the ledger at ``path``, in the order written; ``[]`` if there is no such file.

    Raises:
        json.JSONDecodeError: for a line that is not JSON (blank lines are skipped).
    """
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def append_row(path: Path, row: dict) -> None:
    """Append ``row`` to the ledger at ``path`` as one JSON line, at once, so a grid stopped later keeps it.

    Raises:
        TypeError: if ``row`` holds a value JSON cannot write.
    """
    line = json.dumps(row) + "\n"
    with path.open("a") as f:
        f.write(line)


def claim(claim_dir: str | None, pair: str, method: str, seed: int) -> bool:
    """True if this process may train the run: always without ``claim_dir``; else if it is the first to create the
    run's folder there (``os.mkdir`` is atomic, so two processes never train the same run).

    Raises:
        OSError: if ``claim_dir`` cannot be created.
    """
    if claim_dir is None:
        return True
    Path(claim_dir).mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(Path(claim_dir) / f"{pair}_{method}_{seed}")
    except FileExistsError:
        return False
    return True


def parse_setting(spec: str) -> tuple[str, dict]:
    """A method with settings of its own: ``"dann:grl_max_lambda=1.0,dann_weight=0.5"`` -> ``("dann",
    {"grl_max_lambda": 1.0, "dann_weight": 0.5})``; a value that is not JSON is a string (``source_weighting=auto``)."""
    method, _, rest = spec.partition(":")
    overrides = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return method, overrides


def recipe_of(config: AdaptConfig, spec: str) -> dict:
    """The adaptation settings a run of ``spec`` (a method, or a method with settings: :func:`parse_setting`)
    depends on (:meth:`AdaptConfig.adaptation_settings`), so that retuning one method does not void the rows of the
    others.

    Raises:
        TypeError: if ``spec`` sets a field ``AdaptConfig`` does not have.
    """
    method, overrides = parse_setting(spec)
    return dataclasses.replace(config, **overrides).adaptation_settings(method)


def row_recipe(config: AdaptConfig, spec: str) -> dict:
    """:func:`recipe_of` with JSON values, as a row stores it (tuples become lists)."""
    return json.loads(json.dumps(recipe_of(config, spec)))


SCORING_FIELDS = ("label_free_validators", "label_free_max_rows", "label_free_source_split")
"""``AdaptConfig`` fields that say how a run's model is scored, not what it trains: left out of :func:`run_key`."""


def run_key(config: AdaptConfig, spec: str, budget: dict, model: str, data: dict) -> dict:
    """What defines the model a benchmark run trains, for finding it again (a checkpoint to resume, a kept model to
    fuse): the method of ``spec``, its recipe (:func:`row_recipe` of ``config``, the run's configuration, without
    :data:`SCORING_FIELDS`), ``budget`` (:func:`budget_of`), the backbone ``model`` and ``data``
    (``dataclasses.asdict`` of the run's ``DataArguments``). Runs with equal keys and seeds train the same model,
    whatever their specs are called.

    Raises:
        TypeError: if ``spec`` sets a field ``AdaptConfig`` does not have.
    """
    recipe = {k: v for k, v in row_recipe(config, spec).items() if k not in SCORING_FIELDS}
    return json.loads(json.dumps({"method": parse_setting(spec)[0], "recipe": recipe, "budget": budget,
                                  "model": str(model), "data": data}, default=str))


def key_digest(key: dict) -> str:
    """12 hexadecimal digits of the SHA-256 of ``key`` (JSON with sorted keys): a run key as part of a name."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]


def config_defaults() -> dict:
    """``{field: default}`` of :class:`AdaptConfig`'s fields (JSON values, as rows store them), with the fields whose
    default changed since rows were first written at their former default (:data:`DEFAULTS_BEFORE_RECIPE`)."""
    values = {}
    for f in AdaptConfig.flat_fields():  # its fields and every method setting
        if f.default is not dataclasses.MISSING:
            values[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            values[f.name] = f.default_factory()
    return json.loads(json.dumps({**values, **DEFAULTS_BEFORE_RECIPE}, default=str))


def same_recipe(row: dict, recipe: dict, defaults: dict | None = None) -> bool:
    """A row matches if its recipe agrees with ``recipe`` on every field it records, and a field added to
    ``AdaptConfig`` after the row was written is at its default in ``recipe`` (the value the row ran with): a new
    field at its default does not void older rows, a recipe that moves it does. ``defaults``: those of
    :func:`config_defaults` unless given."""
    if "recipe" not in row:
        return False
    defaults = config_defaults() if defaults is None else defaults
    return all(row["recipe"][k] == v if k in row["recipe"] else k not in defaults or defaults[k] == v
               for k, v in recipe.items())


def budget_of(args, config: AdaptConfig) -> dict:
    """The budget a row records: :data:`BUDGET_KEYS` (and :data:`CONVERGENCE_KEYS` when ``args.eval_steps`` is set)
    from ``args`` (the benchmark's parsed flags), the batch size and learning rate from ``config``.

    Raises:
        KeyError: if ``args`` lacks one of those keys.
    """
    values = {**vars(args), **{k: getattr(config, k) for k in ("per_device_train_batch_size", "learning_rate")}}
    return {k: values[k] for k in BUDGET_KEYS + (CONVERGENCE_KEYS if args.eval_steps else ())}


def fusion_recipe(config: AdaptConfig, members: list[str]) -> dict:
    """What a fused model's row records as its recipe: ``{member: row_recipe(config, member)}``."""
    return {member: row_recipe(config, member) for member in members}


def matching_rows(rows: list[dict], budget: dict, config: AdaptConfig, specs: list[str] | None = None) -> list[dict]:
    """The rows run with ``budget`` and with the recipe ``config`` gives their method now (:func:`same_recipe`,
    leaving out :data:`BUDGET_SET_FIELDS`): the rows a table compares and a rerun skips. A fused model's row
    (with ``"fusion": {"mode", "members"}`` and :func:`fusion_recipe`) matches while every member's recipe does.

    Args:
        specs: the methods and fusions a grid or table names (``None``: each row's own). A row is returned under
            the first of them it ran as: its own name if that one matches, else the first spec of the same method
            (a fusion: the same mode, and members of the same methods in the same order) whose recipe it ran
            with. So a row keeps its meaning when the recipe moves a setting: once the recipe turns AdaMatch's
            distribution alignment off, a row of ``adamatch`` run with it on reads as
            ``adamatch:adamatch_distribution_alignment=true``, and a row of
            ``adamatch:adamatch_distribution_alignment=false`` as ``adamatch``. Rows that match none are left out.
    """
    defaults = config_defaults()
    recipes = {}

    def recipe(spec: str) -> dict:
        if spec not in recipes:
            recipes[spec] = {k: v for k, v in row_recipe(config, spec).items() if k not in BUDGET_SET_FIELDS}
        return recipes[spec]

    def ran_as_member(recorded: dict | None, member: str, spec_member: str) -> bool:
        """Whether a run of ``member`` that recorded the recipe ``recorded`` is a run of ``spec_member`` now."""
        return (recorded is not None and parse_setting(member)[0] == parse_setting(spec_member)[0]
                and same_recipe({"recipe": recorded}, recipe(spec_member), defaults))

    def ran_as(row: dict, spec: str) -> bool:
        if "fusion" not in row:
            return ran_as_member(row.get("recipe"), row["method"], spec)
        try:
            fusion = Fusion.parse(spec)
        except ValueError:  # a method, not a fusion
            return False
        members = row["fusion"]["members"]
        return (fusion.mode == row["fusion"]["mode"] and len(fusion.members) == len(members)
                and all(ran_as_member(row["recipe"].get(m), m, spec_member)
                        for m, spec_member in zip(members, fusion.members, strict=True)))

    kept = []
    for row in rows:
        if row["budget"] != budget:
            continue
        own = row["method"]
        candidates = [own] if specs is None else [own] * (own in specs) + [s for s in specs if s != own]
        spec = next((s for s in candidates if ran_as(row, s)), None)
        if spec is not None:
            kept.append(row if spec == own else {**row, "method": spec})
    return kept


def environment(bf16: bool = False) -> dict:
    """Where and how a row ran (``{"device": "cpu" | GPU name, "processor": CPU model, "cpu_capability": the
    kernels torch dispatches to ("AVX512", "AVX2", ...), "torch": version, "transformers": version,
    "precision": "fp32" | "bf16"}``, ``bf16`` the run's ``AdaptConfig.bf16``): rows of one table should share it,
    since the same run gives slightly different numbers on another device, processor, release or precision."""
    import torch
    import transformers

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return {"device": device, "processor": processor_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "precision": "bf16" if bf16 else "fp32"}


def processor_name() -> str:
    """The CPU's model name, from ``/proc/cpuinfo`` on Linux, else :func:`platform.processor` (``""`` if unknown)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def markdown_table(rows: list[dict], methods: list[str], pairs: list[str]) -> str:
    """Target accuracy (%) per pair and method, mean +- std over seeds; average over pairs; gain vs source-only:
    the mean of the paired differences (same pair and seed) +- their standard error, which says whether a gain or a
    negative transfer stands out of the seed-to-seed noise. A method with no row on ``pairs`` is left out.

    Raises:
        KeyError: for a row without ``pair``, ``method``, ``seed`` or ``target_accuracy``.
    """
    by = {}
    for r in rows:
        by.setdefault((r["pair"], r["method"]), {})[r["seed"]] = 100 * r["target_accuracy"]
    header = ("| method | " + " | ".join(p.replace(":", " -> ") for p in pairs)
              + " | average | vs source-only (± s.e.) |")
    lines = [header, "|---|" + "---:|" * (len(pairs) + 2)]
    for method in methods:
        cells, means, gains = [], [], []
        for pair in pairs:
            accs = by.get((pair, method), {})
            if not accs:
                cells.append("—")
                continue
            mean = statistics.fmean(accs.values())
            std = statistics.stdev(accs.values()) if len(accs) > 1 else 0.0
            cells.append(f"{mean:.2f} ± {std:.2f} (n={len(accs)})")
            means.append(mean)
            base = by.get((pair, SOURCE_ONLY), {})
            gains += [accs[s] - base[s] for s in accs if s in base]
        if not means:
            continue  # no run of this method on these pairs yet
        average = f"{statistics.fmean(means):.2f}" if len(means) == len(pairs) else "—"
        gain = "—" if method == SOURCE_ONLY or not gains else f"{statistics.fmean(gains):+.2f}"
        if method != SOURCE_ONLY and len(gains) > 1:
            gain += f" ± {statistics.stdev(gains) / len(gains) ** 0.5:.2f}"
        lines.append(f"| {display_name(method)} | " + " | ".join(cells)
                     + f" | {average} | {gain} |")
    return "\n".join(lines)


def validator_table(rows: list[dict], methods: list[str], pairs: list[str]) -> str:
    """Each label-free validator's mean score per method (higher is better, :mod:`hfadapt.selection`) over the pair
    and seed blocks on ``pairs`` that hold a row of every method in ``methods`` with validators, so every mean reads
    the same blocks; the rule a grid's recipe choice follows reads these. Empty when no block is complete.

    Raises:
        KeyError: for a row without ``pair``, ``method`` or ``seed``.
    """
    scored = {(r["pair"], r["seed"], r["method"]): r["validators"] for r in rows
              if r.get("validators") and r["pair"] in pairs and r["method"] in methods}
    present = [m for m in methods if any(key[2] == m for key in scored)]
    blocks = sorted({(p, s) for p, s, _ in scored if all((p, s, m) in scored for m in present)})
    names = sorted({name for key, v in scored.items() if key[:2] in blocks for name in v})
    if not blocks or not names:
        return ""
    lines = [f"| method ({len(blocks)} pair-seed blocks) | " + " | ".join(names) + " |",
             "|---|" + "---:|" * len(names)]
    for method in present:
        cells = []
        for name in names:
            values = [scored[(p, s, method)].get(name) for p, s in blocks]
            cells.append(f"{statistics.fmean(values):.3f}" if None not in values else "—")
        lines.append(f"| {display_name(method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def block_gains(rows: list[dict], methods: list[str], pairs: list[str]) -> str:
    """One line per pair and seed block on ``pairs`` that has a source-only row: its target accuracy (%) and each of
    ``methods``' difference to it (points; "—" where the method has no row yet), blocks in pair order, then seed.
    Empty when no block has a source-only row.

    Raises:
        KeyError: for a row without ``pair``, ``method``, ``seed`` or ``target_accuracy``.
    """
    by = {(r["pair"], r["seed"], r["method"]): 100 * r["target_accuracy"] for r in rows if r["pair"] in pairs}
    others = [m for m in methods if m != SOURCE_ONLY]
    blocks = sorted(((p, s) for p, s, m in by if m == SOURCE_ONLY), key=lambda b: (pairs.index(b[0]), b[1]))
    if not blocks:
        return ""
    lines = ["| block | source-only | " + " | ".join(map(display_name, others)) + " |",
             "|---|" + "---:|" * (len(others) + 1)]
    for pair, seed in blocks:
        base = by[(pair, seed, SOURCE_ONLY)]
        cells = [f"{by[(pair, seed, m)] - base:+.2f}" if (pair, seed, m) in by else "—" for m in others]
        lines.append(f"| {pair.replace(':', ' -> ')}, seed {seed} | {base:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


PRIOR_MATCHED = " + prior matching"
"""Appended to a method's name for its model after target prior matching (:func:`prior_matched_rows`)."""


def prior_matched_rows(rows: list[dict]) -> list[dict]:
    """A row for each row scored with ``--prior_matching``: the same pair, seed, budget and recipe, the method named
    ``<method> + prior matching``, and the matched model's scores (``prior_matched["matched"]``) as its own, so that
    :func:`markdown_table` pairs it with the source-only run like any method. Rows without ``prior_matched`` give
    none."""
    return [{**{k: v for k, v in r.items() if k != "prior_matched"}, **r["prior_matched"]["matched"],
             "method": r["method"] + PRIOR_MATCHED} for r in rows if r.get("prior_matched")]


def gain_summary(rows: list[dict], methods: list[str], pairs: list[str], validator: str = "dev") -> str:
    """Per method, over the pair and seed blocks on ``pairs`` that hold a row of source-only and of every one of
    ``methods``: the mean paired gain over source-only (points) ± its standard error, how many blocks gained, the
    worst block's difference and the mean ``validator`` score (higher is better; "—" where a row lacks it). Empty
    when no block is complete.

    Raises:
        KeyError: for a row without ``pair``, ``method``, ``seed`` or ``target_accuracy``.
    """
    by = {(r["pair"], r["seed"], r["method"]): r for r in rows if r["pair"] in pairs}
    present = [SOURCE_ONLY, *(m for m in methods if m != SOURCE_ONLY)]
    blocks = sorted({(p, s) for p, s, _ in by if all((p, s, m) in by for m in present)})
    if not blocks:
        return ""
    lines = [f"| model ({len(blocks)} pair-seed blocks) | vs source-only (± s.e.) | blocks above source-only "
             f"| worst block | mean {validator.upper()} |", "|---|---:|---:|---:|---:|"]
    for method in present:
        scores = [(by[(p, s, method)].get("validators") or {}).get(validator) for p, s in blocks]
        mean_score = "—" if None in scores else f"{statistics.fmean(scores):.3f}"
        name = display_name(method)
        if method == SOURCE_ONLY:
            lines.append(f"| {name} | — | — | — | {mean_score} |")
            continue
        gains = [100 * (by[(p, s, method)]["target_accuracy"] - by[(p, s, SOURCE_ONLY)]["target_accuracy"])
                 for p, s in blocks]
        error = f" ± {statistics.stdev(gains) / len(gains) ** 0.5:.2f}" if len(gains) > 1 else ""
        above = sum(g > 0 for g in gains)
        lines.append(f"| {name} | {statistics.fmean(gains):+.2f}{error} | {above} of {len(gains)} "
                     f"| {min(gains):+.2f} | {mean_score} |")
    return "\n".join(lines)
