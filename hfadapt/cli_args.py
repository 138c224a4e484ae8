"""Parsing dataclass arguments from the command line and a YAML file (``--config``), command line winning."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import yaml
from transformers import HfArgumentParser


def parse_with_config(
    dataclass_types,
    args: list[str] | None = None,
    default_config: str | Path | None = None,
    ignore_keys: tuple[str, ...] = (),
):
    """Parse ``dataclass_types`` with ``HfArgumentParser``, taking defaults from ``--config FILE.yaml``.

    Values in the YAML file replace the dataclasses' defaults; arguments on the command line replace both.
    Without ``--config``, ``default_config`` (if given and present) is read. ``ignore_keys`` names YAML keys that
    this caller deliberately leaves out (e.g. a benchmark that sets the domains itself).

    Returns:
        One instance per dataclass type, in order.

    Raises:
        FileNotFoundError: if the config file does not exist.
        ValueError: if the file is not a YAML mapping or names a key no dataclass has.
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, rest = pre.parse_known_args(args)
    config_path = known.config or default_config
    parser = HfArgumentParser(dataclass_types)
    if config_path is not None and (known.config or Path(config_path).is_file()):
        path = Path(config_path)
        if not path.is_file():
            raise FileNotFoundError(f"--config {path}: no such file")
        values = yaml.safe_load(path.read_text()) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a YAML mapping of argument names to values")
        values = {k: v for k, v in values.items() if k not in ignore_keys}
        fields = {f.name for t in dataclass_types for f in dataclasses.fields(t)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ValueError(f"{path} sets unknown argument(s) {unknown}; see --help for the names")
        parser.set_defaults(**values)
    return parser.parse_args_into_dataclasses(args=rest)
