"""Parsing dataclass arguments from the command line over YAML files: a default recipe, a user's ``--config`` on
top of it, command-line flags on top of both."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml
from transformers import HfArgumentParser


class UsageError(ValueError):
    """Bad arguments or data, found before any training: the scripts print its message as one line and exit 2."""


def read_yaml(path: str | Path, what: str = "--config") -> dict:
    """The mapping in a YAML file.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if it is not valid YAML (naming the line) or does not hold a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path}: no such file")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(f"{where}: not valid YAML ({problem}); fix that line") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file; a --config file is YAML text") from None
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise ValueError(f"{path} holds a YAML {type(values).__name__}, not a mapping of argument names to values "
                         "(write 'name: value' lines, e.g. 'method: dann')")
    return values


def flags_in(args: Iterable[str]) -> set[str]:
    """The argument names that command-line ``args`` set (``--name value`` or ``--name=value``)."""
    return {a[2:].split("=", 1)[0] for a in args if a.startswith("--") and len(a) > 2}


def parse_with_config(
    dataclass_types,
    args: list[str] | None = None,
    default_config: str | Path | None = None,
    ignore_keys: tuple[str, ...] = (),
    own_data_keys: Iterable[str] = (),
    recipe_data_keys: Iterable[str] = (),
):
    """Parse ``dataclass_types`` with ``HfArgumentParser``, the defaults layered from YAML files.

    Layers, each over the one before: the dataclasses' defaults; ``default_config`` (the recipe, if given and
    present); the user's ``--config FILE.yaml``; the command line. A key the user's file does not set keeps the
    recipe's value. One exception: the recipe's data (``recipe_data_keys``, e.g. the demo dataset and its domains)
    is dropped as a whole when the user's file or the command line names data of its own (any of
    ``own_data_keys``), so a recipe's demo domains never filter a user's table. ``ignore_keys`` names YAML keys
    this caller deliberately leaves out (e.g. a benchmark that sets the domains itself).

    Returns:
        One instance per dataclass type, in order.

    Raises:
        FileNotFoundError: if a config file does not exist.
        ValueError: if a file is not a YAML mapping or names a key no dataclass has.
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, rest = pre.parse_known_args(args)
    parser = HfArgumentParser(dataclass_types)
    fields = {f.name for t in dataclass_types for f in dataclasses.fields(t)}
    layers = []
    if default_config is not None and Path(default_config).is_file():
        layers.append((Path(default_config), read_yaml(default_config, "recipe")))
    if known.config:
        layers.append((Path(known.config), read_yaml(known.config)))
    user_keys = flags_in(rest) | (set(layers[-1][1]) if known.config else set())
    values = {}
    for index, (path, layer) in enumerate(layers):
        layer = {k: v for k, v in layer.items() if k not in ignore_keys}
        unknown = sorted(set(layer) - fields)
        if unknown:
            raise ValueError(f"{path} sets unknown argument(s) {unknown}; see --help for the names")
        is_recipe = index == 0 and default_config is not None and path == Path(default_config)
        if is_recipe and user_keys & set(own_data_keys):
            layer = {k: v for k, v in layer.items() if k not in set(recipe_data_keys)}
        values.update(layer)
    parser.set_defaults(**values)
    return parser.parse_args_into_dataclasses(args=rest)


DEBUG_FLAG = "--debug"
"""The flag that shows the traceback of an error instead of the one-line message."""
EXPECTED_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)
"""Errors of bad arguments, data or files: reported in one line by :func:`report_errors`."""


def pop_debug(argv: list[str]) -> tuple[bool, list[str]]:
    """``(whether --debug is in argv, argv without it)``."""
    return DEBUG_FLAG in argv, [a for a in argv if a != DEBUG_FLAG]


def report_errors(main: Callable[[], object], prog: str, debug: bool = False) -> object:
    """Call ``main()``, the one error handler of the examples and the ``hfadapt`` command: an error of bad
    arguments, data or files (:data:`EXPECTED_ERRORS`, :class:`UsageError` among them) is printed as one line,
    ``<prog>: error: <message>``, and exits with status 2, as argparse does; with ``debug`` it propagates with its
    traceback. Other errors (a bug) always keep their traceback."""
    try:
        return main()
    except EXPECTED_ERRORS as err:
        if debug:
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        if not isinstance(err, UsageError | FileNotFoundError):
            message = f"{type(err).__name__}: {message}" if type(err) is not ValueError else message
        print(f"{prog}: error: {message} (--debug shows the traceback)", file=sys.stderr)
        raise SystemExit(2) from None


def run_as_script(main: Callable[[], object], prog: str | None = None) -> None:
    """Call ``main()`` under :func:`report_errors`, ``--debug`` taken out of ``sys.argv`` first: bad arguments or
    data are one line and exit status 2; ``--debug`` shows the traceback."""
    debug, sys.argv[:] = pop_debug(sys.argv)
    report_errors(main, prog or sys.argv[0], debug)
