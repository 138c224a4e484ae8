"""The fingerprint of a run: what a checkpoint must share with the run that resumes from it.

A checkpoint of another run (another method, recipe, dataset or model) left in a reused output folder would
otherwise be resumed as if it were this run's. :func:`run_fingerprint` describes a run in four parts, each reduced to
a sha256 so that two fingerprints compare cheaply and a mismatch names the part (and, for the method and the
recipe, the fields) that differ:

- ``method``: ``AdaptConfig.method``;
- ``recipe``: ``AdaptConfig.adaptation_settings()`` plus the training fields of :data:`RECIPE_FIELDS` (seed,
  learning rate, batch size, ...). ``max_steps`` and ``num_train_epochs`` are left out: a resumed run may train on
  to a larger budget;
- ``data``: per training set (each source domain and the target), its row count, features and the stored values of
  five rows spread over it (first, quartiles, last): cheap, and it tells a changed sample, split or tokenisation apart;
- ``model``: the model's class and its configuration (without local paths and library versions), and the PEFT
  configuration of a PEFT model. The weights are not hashed: a resumed run replaces them with the checkpoint's.

Each ``AdaptTrainer`` checkpoint holds its run's fingerprint in :data:`FINGERPRINT_NAME`.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
from collections.abc import Mapping

import datasets
from torch import nn

from ..modeling.heads import unwrap_peft

FINGERPRINT_NAME = "adapt_fingerprint.json"
"""File of an ``AdaptTrainer`` checkpoint holding the fingerprint of the run that wrote it."""

RECIPE_FIELDS = (
    "seed", "data_seed", "full_determinism", "learning_rate", "per_device_train_batch_size",
    "gradient_accumulation_steps", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm",
    "lr_scheduler_type", "lr_scheduler_kwargs", "warmup_steps", "optim", "optim_args", "label_smoothing_factor",
    "fp16", "bf16", "train_sampling_strategy", "label_names",
)
"""``TrainingArguments`` fields that define a run besides the adaptation settings (the budget's length excepted)."""

PARTS = ("method", "recipe", "data", "model")


class RunMismatchError(ValueError):
    """A checkpoint written by a run that differs from this one (or with no fingerprint to tell)."""


def _plain(value):
    """``value`` as JSON data: enums by value, bytes by their sha256, tuples as lists, other objects by ``str``."""
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, bytes | bytearray):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _sha256(value) -> str:
    return hashlib.sha256(json.dumps(_plain(value), sort_keys=True).encode()).hexdigest()


def data_digest(ds: datasets.Dataset) -> dict:
    """``{"rows", "sha256"}`` of a dataset: its row count, and a hash of its features and of the stored values
    (before any lazy transform) of its first, quartile and last rows."""
    n = len(ds)
    positions = sorted({0, n // 4, n // 2, (3 * n) // 4, n - 1}) if n else []
    table = ds.select(positions).with_format("arrow")[:] if positions else None
    rows = {name: table.column(name).to_pylist() for name in sorted(table.column_names)} if table is not None else {}
    return {"rows": n, "sha256": _sha256({"features": ds.features.to_dict(), "rows": rows})}


def model_description(model: nn.Module) -> dict:
    """The model part of a fingerprint: ``{"class", "config_sha256"}`` (plus ``"peft_sha256"`` for a PEFT
    model). Keys of the configuration that start with ``_`` (its local path) and library versions are left out."""
    base = unwrap_peft(model)
    config = {k: v for k, v in base.config.to_dict().items()
              if not k.startswith("_") and k not in ("transformers_version", "name_or_path")}
    described = {"class": type(base).__name__, "config_sha256": _sha256(config)}
    peft_config = getattr(model, "peft_config", None)
    if isinstance(peft_config, Mapping) and base is not model:
        plain = {name: {k: v for k, v in (c.to_dict() if hasattr(c, "to_dict") else vars(c)).items()
                        if k not in ("base_model_name_or_path", "revision")}
                 for name, c in peft_config.items()}
        described["peft_sha256"] = _sha256(plain)
    return described


def run_fingerprint(args, model: nn.Module, sources: Mapping[str, datasets.Dataset],
                    target: datasets.Dataset) -> dict:
    """The fingerprint of a run of ``args`` (an :class:`~hfadapt.AdaptConfig`) training ``model`` on ``sources``
    (``{domain name: labelled set}``) and ``target``.

    Returns:
        ``{"method": str, "recipe": {field: value}, "data": {set: {"rows", "sha256"}}, "model": {...},
        "sha256": hex}``; ``sha256`` covers the four parts.
    """
    recipe = {**args.adaptation_settings(), **{k: getattr(args, k, None) for k in RECIPE_FIELDS}}
    data = {**{f"source {name}": data_digest(ds) for name, ds in sources.items()}, "target": data_digest(target)}
    fingerprint = _plain({"method": args.method, "recipe": recipe, "data": data, "model": model_description(model)})
    fingerprint["sha256"] = _sha256({part: fingerprint[part] for part in PARTS})
    return fingerprint


def fingerprint_differences(expected: Mapping, found: Mapping) -> list[str]:
    """What differs between this run's fingerprint ``expected`` and a checkpoint's ``found``, one line per
    difference (``[]`` when they match): the method, each recipe field, each training set, the model."""
    if expected.get("sha256") == found.get("sha256"):
        return []
    lines = []
    if expected.get("method") != found.get("method"):
        lines.append(f"method: checkpoint {found.get('method')!r}, this run {expected.get('method')!r}")
    def show(values: Mapping, key: str) -> str:
        return repr(values[key]) if key in values else "(absent)"

    for part in ("recipe", "data", "model"):
        mine, theirs = expected.get(part) or {}, found.get(part) or {}
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                lines.append(f"{part} {key}: checkpoint {show(theirs, key)}, this run {show(mine, key)}")
    return lines or ["the fingerprints differ (the checkpoint's file was edited?)"]


def write_fingerprint(folder: str | os.PathLike, fingerprint: Mapping) -> None:
    """Write ``fingerprint`` to ``folder/adapt_fingerprint.json``."""
    with open(os.path.join(os.fspath(folder), FINGERPRINT_NAME), "w", encoding="utf-8") as f:
        json.dump(fingerprint, f, indent=1, sort_keys=True)


def check_fingerprint(folder: str | os.PathLike, expected: Mapping) -> None:
    """Refuse a checkpoint that another run wrote.

    Raises:
        RunMismatchError: if ``folder`` has no readable fingerprint, or one that differs from ``expected``,
            listing what differs (the method, recipe fields, training sets, model).
    """
    path = os.path.join(os.fspath(folder), FINGERPRINT_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            found = json.load(f)
    except FileNotFoundError:
        raise RunMismatchError(
            f"{folder} has no {FINGERPRINT_NAME}: it was not written by this version of AdaptTrainer, so it cannot "
            "be told to belong to this run. Start afresh in a new output_dir, or resume from a checkpoint of this "
            "run.") from None
    except (OSError, ValueError) as err:
        raise RunMismatchError(f"{path} cannot be read ({err})") from err
    differences = fingerprint_differences(expected, found)
    if differences:
        raise RunMismatchError(
            f"{folder} was written by a different run, so resuming from it would continue that run:\n  "
            + "\n  ".join(differences)
            + "\nUse a new output_dir, or the settings, data and model of the run that wrote it.")
