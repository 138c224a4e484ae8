"""The default recipes, shipped inside the package so that ``hfadapt train`` works from an installed wheel.

A recipe is a YAML mapping of argument names (the script's and :class:`~hfadapt.AdaptConfig`'s) to values. A user
YAML given with ``--config`` layers over it, and command-line flags override both
(:func:`hfadapt.cli.args.parse_with_config`). Why each value: ``docs/recipes.md`` in the repository.
"""

from __future__ import annotations

from pathlib import Path

RECIPE_DIR = Path(__file__).resolve().parent
RECIPES = {"text": "sentiment_transfer.yaml", "image": "digits_transfer.yaml"}
"""Task -> its default recipe: text classification (the sentiment benchmark's settings) and image classification
(the digits example's)."""


def recipe_path(task: str) -> Path:
    """The default recipe of ``task`` (``"text"`` or ``"image"``), a YAML file inside the package.

    Raises:
        ValueError: on an unknown task, naming the known ones.
    """
    if task not in RECIPES:
        raise ValueError(f"no recipe for task {task!r}; choose from {sorted(RECIPES)}")
    return RECIPE_DIR / RECIPES[task]
