"""The registry of alignment methods and of their settings dataclasses.

A method registers its class (:func:`register_method`) and, through its class attribute ``settings_class``, the
dataclass of its own settings (fields named ``<method>_*``, as the ``AdaptConfig`` keyword arguments, command-line
flags and recipe keys that set them). Settings that several methods read and no one method owns (the domain
discriminator, the gradient-reversal schedule) register with :func:`register_shared_settings`.

This module imports no method: the method modules import it, and :mod:`hfadapt.methods` imports them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from ..trainer.config import AdaptConfig
    from .base import AlignmentMethod

ALIGNMENT_METHODS: dict[str, type[AlignmentMethod]] = {}
"""Alignment method classes by name. ``"none"`` (the source-only baseline) is no entry: it means no method."""

SOURCE_ONLY = "none"

SHARED_SETTINGS: list[type] = []
"""Settings dataclasses that several methods (and the trainer) read and no single method owns; every run records
them in its :meth:`~hfadapt.AdaptConfig.adaptation_settings`."""


def display_name(method: str) -> str:
    """How tables and reports name a method spec: ``"source-only"`` for :data:`SOURCE_ONLY`, also where a table adds
    words after it (``"none + prior matching"`` -> ``"source-only + prior matching"``); any other spec as it is."""
    head, space, rest = method.partition(" ")
    return f"source-only{space}{rest}" if head == SOURCE_ONLY else method


def _check_settings_class(cls: type, owner: str) -> None:
    """Raise ``ValueError`` unless ``cls`` is a dataclass whose field names no other registered settings use."""
    if not dataclasses.is_dataclass(cls):
        raise ValueError(f"{owner}: settings {cls!r} must be a dataclass")
    taken = {f.name: other for other in settings_classes() if other is not cls for f in dataclasses.fields(other)}
    clash = sorted(f.name for f in dataclasses.fields(cls) if f.name in taken)
    if clash:
        raise ValueError(f"{owner}: settings {clash} of {cls.__name__} are already registered by "
                         f"{taken[clash[0]].__name__}")


def register_method(cls: type[AlignmentMethod]) -> type[AlignmentMethod]:
    """Class decorator that registers an :class:`~hfadapt.methods.base.AlignmentMethod` under ``cls.name``, with
    its settings dataclass ``cls.settings_class`` (if any).

    Raises:
        ValueError: if the name is taken or reserved (``"none"``), or the settings class is no dataclass or
            reuses a registered setting's name.
    """
    name = getattr(cls, "name", None)
    if not name or name == SOURCE_ONLY:
        raise ValueError(f"{cls.__name__} needs a `name` other than {SOURCE_ONLY!r} to be registered")
    if name in ALIGNMENT_METHODS:
        raise ValueError(f"alignment method {name!r} is already registered by {ALIGNMENT_METHODS[name].__name__}")
    if getattr(cls, "settings_class", None) is not None:
        _check_settings_class(cls.settings_class, cls.__name__)
    ALIGNMENT_METHODS[name] = cls
    return cls


def register_shared_settings(cls: type) -> type:
    """Class decorator that registers a settings dataclass read by several methods (:data:`SHARED_SETTINGS`).

    Raises:
        ValueError: if ``cls`` is no dataclass or reuses a registered setting's name.
    """
    if cls not in SHARED_SETTINGS:
        _check_settings_class(cls, cls.__name__)
        SHARED_SETTINGS.append(cls)
    return cls


def settings_classes(names: list[str] | None = None) -> tuple[type, ...]:
    """The settings dataclasses a run of the methods ``names`` reads (default: every registered one): the shared
    ones first, then each method's own and those of the methods it reads (``config_prefixes``), in order."""
    methods = list(ALIGNMENT_METHODS) if names is None else names
    read = [m for name in methods for m in (name, *ALIGNMENT_METHODS[name].config_prefixes)]
    owned = [ALIGNMENT_METHODS[m].settings_class for m in read if ALIGNMENT_METHODS[m].settings_class is not None]
    return tuple(dict.fromkeys([*SHARED_SETTINGS, *owned]))


def setting_fields() -> dict[str, tuple[type, dataclasses.Field]]:
    """``{setting name: (its settings dataclass, its field)}`` of every registered setting."""
    return {f.name: (cls, f) for cls in settings_classes() for f in dataclasses.fields(cls)}


def setting_defaults() -> dict[str, Any]:
    """``{setting name: default value}`` of every registered setting (a fresh list for list defaults)."""
    values = {}
    for name, (_, f) in setting_fields().items():
        values[name] = f.default_factory() if f.default is dataclasses.MISSING else f.default
    return values


def parse_method_names(spec: str | list[str]) -> list[str]:
    """Turn ``"dann+mmd"``, ``["dann", "mmd"]`` or ``"none"`` into a list of registered names.

    Returns:
        The method names in order, ``[]`` for the source-only baseline ``"none"``.

    Raises:
        ValueError: on an unknown or repeated name, or ``"none"`` mixed with methods.
    """
    names = [n.strip().lower() for n in (spec.split("+") if isinstance(spec, str) else spec) if n.strip()]
    if not names:
        raise ValueError(f"method is empty; use {SOURCE_ONLY!r} for the source-only baseline "
                         f"or one of {sorted(ALIGNMENT_METHODS)}")
    if names == [SOURCE_ONLY]:
        return []
    unknown = [n for n in names if n not in ALIGNMENT_METHODS]
    if unknown:
        raise ValueError(
            f"unknown method {unknown[0]!r} in {spec!r}; choose from {[SOURCE_ONLY, *sorted(ALIGNMENT_METHODS)]}, "
            "joined with '+' to combine (e.g. 'dann+mmd')"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"method {spec!r} names a method twice")
    return names


def build_methods(config: AdaptConfig, feature_dim: int, num_domains: int = 2, num_classes: int = 2) -> nn.ModuleDict:
    """Instantiate the methods ``config.method`` names, keyed by name (empty for ``"none"``)."""
    return nn.ModuleDict(
        {
            name: ALIGNMENT_METHODS[name].from_config(config, feature_dim, num_domains, num_classes)
            for name in parse_method_names(config.method)
        }
    )
