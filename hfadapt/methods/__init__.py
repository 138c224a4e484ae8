"""Registry of alignment methods: adding a method is one module, one ``@register_method`` line and its tests.

>>> from hfadapt.methods import ALIGNMENT_METHODS, parse_method_names
>>> sorted(ALIGNMENT_METHODS)  # doctest: +NORMALIZE_WHITESPACE
['adamatch', 'cdan', 'coral', 'dann', 'entropy', 'fixmatch', 'im', 'iw', 'jan', 'mcc', 'mean_teacher', 'mmd',
 'self_training', 'udalm']
>>> parse_method_names("dann+mmd")
['dann', 'mmd']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from .base import AlignmentMethod, AlignmentOutput

if TYPE_CHECKING:
    from ..config import AdaptConfig

ALIGNMENT_METHODS: dict[str, type[AlignmentMethod]] = {}
"""Alignment method classes by name. ``"none"`` (the source-only baseline) is no entry: it means no method."""

SOURCE_ONLY = "none"


def register_method(cls: type[AlignmentMethod]) -> type[AlignmentMethod]:
    """Class decorator that registers an :class:`AlignmentMethod` under ``cls.name``.

    Raises:
        ValueError: if the name is taken or reserved (``"none"``).
    """
    name = getattr(cls, "name", None)
    if not name or name == SOURCE_ONLY:
        raise ValueError(f"{cls.__name__} needs a `name` other than {SOURCE_ONLY!r} to be registered")
    if name in ALIGNMENT_METHODS:
        raise ValueError(f"alignment method {name!r} is already registered by {ALIGNMENT_METHODS[name].__name__}")
    ALIGNMENT_METHODS[name] = cls
    return cls


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


# Importing the modules registers them.
from . import (  # noqa: E402,F401
    adamatch,
    cdan,
    coral,
    dann,
    entropy,
    fixmatch,
    importance,
    jan,
    mcc,
    mean_teacher,
    mmd,
    self_training,
    udalm,
)

__all__ = [
    "ALIGNMENT_METHODS",
    "SOURCE_ONLY",
    "AlignmentMethod",
    "AlignmentOutput",
    "build_methods",
    "parse_method_names",
    "register_method",
]
