"""Alignment methods: adding a method is one module (its loss, its settings dataclass and a ``@register_method``
line) and its tests. The registry itself lives in :mod:`hfadapt.methods.registry`; this package imports every
method module (which registers it) and re-exports the registry's names.

>>> from hfadapt.methods import ALIGNMENT_METHODS, parse_method_names
>>> sorted(ALIGNMENT_METHODS)  # doctest: +NORMALIZE_WHITESPACE
['adamatch', 'cdan', 'coral', 'dann', 'entropy', 'fixmatch', 'im', 'iw', 'jan', 'mcc', 'mean_teacher', 'mmd',
 'self_training', 'udalm']
>>> parse_method_names("dann+mmd")
['dann', 'mmd']
"""

from __future__ import annotations

# Importing the modules registers them.
from . import (  # noqa: F401
    adamatch,
    cdan,
    coral,
    dann,
    discriminator,
    entropy,
    fixmatch,
    gradient_reversal,
    importance,
    jan,
    mcc,
    mean_teacher,
    mmd,
    self_training,
    udalm,
)
from .base import AlignmentMethod, AlignmentOutput
from .registry import (
    ALIGNMENT_METHODS,
    SHARED_SETTINGS,
    SOURCE_ONLY,
    build_methods,
    display_name,
    parse_method_names,
    register_method,
    register_shared_settings,
    setting_defaults,
    setting_fields,
    settings_classes,
)

__all__ = [
    "ALIGNMENT_METHODS",
    "SHARED_SETTINGS",
    "SOURCE_ONLY",
    "AlignmentMethod",
    "AlignmentOutput",
    "build_methods",
    "display_name",
    "parse_method_names",
    "register_method",
    "register_shared_settings",
    "setting_defaults",
    "setting_fields",
    "settings_classes",
]
