"""Augmentation specs: ``"mask:0.1+cutoff:0.1+randaugment:2"``, parsed against the registries of the augmentations."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Augmentation:
    """One registered augmentation.

    Attributes:
        fn: the batched function; its signature is the registry's (:mod:`hfadapt.augmentation.text` or ``.image``).
        value_range: ``(low, high)``, the open interval its value must lie in; ``None`` if it takes no value.
        integer: whether the value is a whole number (then ``low <= value <= high``).
        needs_mask_token: whether it needs the tokenizer's ``[MASK]`` id.
    """

    fn: Callable
    value_range: tuple[float, float] | None = None
    integer: bool = False
    needs_mask_token: bool = False

    def check(self, name: str, value: float | None) -> float | None:
        """Return ``value`` as the augmentation takes it; raise ``ValueError`` naming ``name`` if it is out of range."""
        if self.value_range is None:
            if value is not None:
                raise ValueError(f"augmentation {name!r} takes no value, got {name}:{value:g}")
            return None
        low, high = self.value_range
        if value is None:
            raise ValueError(f"augmentation {name!r} needs a value, e.g. {name}:{high if self.integer else 0.1}")
        if self.integer:
            if value != int(value) or not low <= value <= high:
                raise ValueError(f"augmentation {name!r} takes a whole number in [{low:g}, {high:g}], got {value:g}")
            return int(value)
        if not low < value < high:
            raise ValueError(f"augmentation {name!r} takes a value in ({low:g}, {high:g}), got {value:g}")
        return float(value)


@dataclass(frozen=True)
class AugmentationStep:
    """A parsed entry of a spec: the augmentation's name and value (``None`` for one that takes none)."""

    name: str
    value: float | None = None


def parse_steps(spec: str, registry: Mapping[str, Augmentation]) -> list[AugmentationStep]:
    """Parse ``"name:value+name+..."`` against ``registry``.

    Returns:
        The steps in order (applied in that order).

    Raises:
        ValueError: on an empty spec or entry, an unknown name, a value that is no number or out of range, or a
            name given twice.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"augmentation spec is empty; give '+'-joined names of {sorted(registry)}")
    steps: list[AugmentationStep] = []
    for entry in spec.split("+"):
        name, _, raw = entry.strip().partition(":")
        name = name.strip().lower()
        if name not in registry:
            raise ValueError(f"unknown augmentation {name!r} in {spec!r}; choose from {sorted(registry)}")
        try:
            value = float(raw) if raw.strip() else None
        except ValueError:
            raise ValueError(f"augmentation {name!r} in {spec!r} has a value that is not a number: {raw!r}") from None
        steps.append(AugmentationStep(name, registry[name].check(name, value)))
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise ValueError(f"augmentation spec {spec!r} names an augmentation twice")
    return steps
