"""Model soups: averaging the weights of models fine-tuned from one initialisation (Wortsman et al., "Model soups:
averaging weights of multiple fine-tuned models improves accuracy without increasing inference time", ICML 2022).

In hfadapt the ingredients are runs that differ in seed, alignment method or hyperparameters, all started from the
same pretrained model (a soup of unrelated initialisations is no better than its parts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from .averaging import averaged_model, normalised_weights


def uniform_soup(models: Sequence[nn.Module], weights: Sequence[float] | None = None) -> nn.Module:
    """The uniform soup ``theta = (1/K) sum_k theta_k`` of ``K`` models (Wortsman et al., ICML 2022), or the
    weighted average ``sum_k w_k theta_k`` with ``weights`` normalised to sum 1.

    Returns a new model of the members' class (a copy of ``models[0]`` with the averaged weights); integer and
    boolean buffers are the first model's. The inputs are left unchanged.

    Raises:
        ValueError: models of different classes or labels, state dicts that differ in keys, shapes or dtypes (naming
            the first mismatched key), or bad weights (negative, all zero, not one per model).
    """
    return averaged_model(models, normalised_weights(weights, len(models)))


@dataclass
class GreedySoupResult:
    """What :func:`greedy_soup` returns.

    Attributes:
        model: the soup (a new model of the members' class), in eval mode.
        ingredients: indices (into the input list) of the models in the soup, in the order they were added.
        score: the soup's score.
        individual_scores: each input model's own score, in input order.
    """

    model: nn.Module
    ingredients: list[int]
    score: float
    individual_scores: list[float]


def greedy_soup(models: Sequence[nn.Module], score: Callable[[nn.Module], float]) -> GreedySoupResult:
    """The greedy soup of Wortsman et al. (ICML 2022, Recipe 1): sort the models by decreasing held-out score,
    start from the best one, and add each next model only if the uniform soup with it scores at least as high as
    without it.

    Args:
        models: ``K`` models of one class and architecture.
        score: ``score(model) -> float``, higher is better, called on models in eval mode. It decides which models
            enter the soup, so in hfadapt it must be **source**-validation accuracy or a label-free validator
            (:mod:`hfadapt.selection`), never target labels: selecting on target labels is not unsupervised
            domain adaptation and overstates the result.

    Raises:
        ValueError: no model, or the models differ (see :func:`uniform_soup`).

    >>> result = greedy_soup([run_a, run_b, run_c], score=source_val_accuracy)  # doctest: +SKIP
    >>> result.ingredients, result.score  # doctest: +SKIP
    """
    if not models:
        raise ValueError("greedy_soup needs at least one model")
    individual = [float(score(m.eval())) for m in models]
    order = sorted(range(len(models)), key=lambda i: -individual[i])  # stable: ties keep the input order
    ingredients, best = [order[0]], individual[order[0]]
    for i in order[1:]:
        candidate = uniform_soup([models[j] for j in (*ingredients, i)]).eval()
        value = float(score(candidate))
        if value >= best:  # "does not drop": an equal score keeps the model, as in the paper
            ingredients, best = [*ingredients, i], value
    soup = uniform_soup([models[j] for j in ingredients]).eval()
    return GreedySoupResult(model=soup, ingredients=ingredients, score=best, individual_scores=individual)
