"""Parsing dataclass arguments from the command line over YAML files: a default recipe, a user's ``--config`` on
top of it, command-line flags on top of both."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import typing
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


class SettingsArgumentParser(HfArgumentParser):
    """``HfArgumentParser`` that also parses the settings dataclasses a dataclass type names (its classmethod
    ``settings_dataclasses()``, e.g. :meth:`hfadapt.AdaptConfig.settings_dataclasses`): each setting is a flag of
    its own name, listed by ``--help`` in a group per settings class with its help, and the parsed values are
    folded into that type's ``method_settings`` field (which is no flag itself).

    Raises:
        ValueError: from parsing, as ``HfArgumentParser`` does (unknown flags, a value a field rejects).
    """

    def _add_dataclass_arguments(self, dtype):
        nested = getattr(dtype, "settings_dataclasses", None)
        if nested is None:
            return super()._add_dataclass_arguments(dtype)
        type_hints = typing.get_type_hints(dtype)
        for f in dataclasses.fields(dtype):
            if f.init and f.name != "method_settings":
                f.type = type_hints[f.name]
                self._parse_dataclass_field(self, f)
        names = []
        for settings_class in nested():
            group = self.add_argument_group(f"{settings_class.__name__}: {first_line(settings_class.__doc__)}")
            hints = typing.get_type_hints(settings_class)
            for f in dataclasses.fields(settings_class):
                f = copy.copy(f)  # HfArgumentParser rewrites f.type; the settings class keeps its own
                f.type = hints[f.name]
                self._parse_dataclass_field(group, f)
                names.append(f.name)
        self._settings_names = [*getattr(self, "_settings_names", []), *names]

    def parse_known_args(self, args=None, namespace=None):
        namespace, rest = super().parse_known_args(args, namespace)
        names = [name for name in getattr(self, "_settings_names", []) if hasattr(namespace, name)]
        if names:
            namespace.method_settings = {name: vars(namespace).pop(name) for name in names}
        return namespace, rest


def first_line(text: str | None) -> str:
    """The first line of a docstring, stripped (``""`` for none)."""
    return (text or "").strip().split("\n", 1)[0]


def argument_names(dataclass_types) -> set[str]:
    """The argument names (flags without ``--``, recipe keys) of ``dataclass_types``, with the settings of those
    that name settings dataclasses (:class:`SettingsArgumentParser`)."""
    names = set()
    for dtype in dataclass_types:
        names |= {f.name for f in dataclasses.fields(dtype)}
        for settings_class in getattr(dtype, "settings_dataclasses", tuple)():
            names |= {f.name for f in dataclasses.fields(settings_class)}
    return names


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
    """Parse ``dataclass_types`` with :class:`SettingsArgumentParser` (``HfArgumentParser`` that also reads the
    methods' settings of :class:`~hfadapt.AdaptConfig`), the defaults layered from YAML files.

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
    parser = SettingsArgumentParser(dataclass_types)
    fields = argument_names(dataclass_types)
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
