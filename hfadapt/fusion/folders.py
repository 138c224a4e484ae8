"""Fusing saved model folders into one saved model folder: what ``hfadapt fuse`` runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoConfig, AutoProcessor, PreTrainedModel

from .averaging import normalised_weights
from .compat import check_same_labels, classification_task
from .ensemble import MEMBER_CLASSES, EnsembleForClassification
from .soup import greedy_soup, uniform_soup
from .wise_ft import wise_ft

PROCESSOR_FILES = ("tokenizer_config.json", "preprocessor_config.json", "processor_config.json")
"""A model folder holding one of these has a tokenizer or processor that the fused folder gets a copy of."""


def check_model_folder(model_dir: str | Path) -> Path:
    """``model_dir`` as a ``Path``, after checking that it is a folder with a ``config.json``.

    Raises:
        FileNotFoundError: no such folder, or no ``config.json`` in it (e.g. a LoRA adapter folder).
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model folder {model_dir} does not exist")
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} has no config.json (a LoRA adapter folder? save the merged model, "
                                "peft_save='merged')")
    return model_dir


def load_classifier(model_dir: str | Path) -> PreTrainedModel:
    """The sequence or image classification model saved in ``model_dir`` (``AutoModelFor*Classification``), in
    eval mode.

    Raises:
        FileNotFoundError: no such folder, or no ``config.json`` in it (e.g. a LoRA adapter folder).
        ValueError: a config type without a classification model.
    """
    model_dir = check_model_folder(model_dir)
    config = AutoConfig.from_pretrained(model_dir)
    return MEMBER_CLASSES[classification_task(config)].from_pretrained(model_dir, config=config).eval()


def save_fused(model: PreTrainedModel, output_dir: str | Path, processor_from: str | Path | None = None) -> Path:
    """``model.save_pretrained(output_dir)``, plus the tokenizer or processor saved in ``processor_from`` if that
    folder has one (the first member's: every member reads the same inputs). Returns ``output_dir``."""
    output_dir = Path(output_dir)
    model.save_pretrained(output_dir)
    if processor_from is not None and any((Path(processor_from) / f).is_file() for f in PROCESSOR_FILES):
        AutoProcessor.from_pretrained(processor_from).save_pretrained(output_dir)
    return output_dir


HeldOutScore = Callable[[PreTrainedModel], float]
"""``score(model) -> float``, higher is better: a model's accuracy on a labelled held-out set of the source domain."""


@dataclass(frozen=True)
class FusionMode:
    """How ``hfadapt fuse --mode`` builds its model: ``build(models, weights, alpha, score) -> model``.

    Attributes:
        build: the fusion, given the loaded models, the member weights (or ``None``), ``alpha`` (or ``None``) and
            a held-out score (or ``None``).
        uses_alpha: whether the mode takes WiSE-FT's ``alpha`` (and no weights) or member weights (and no alpha).
        uses_score: whether the mode chooses among the models by a held-out score (and takes no weights).
        num_models: how many models it fuses (``None``: any number).
    """

    build: Callable[[list[PreTrainedModel], Sequence[float] | None, float | None, HeldOutScore | None],
                    PreTrainedModel]
    uses_alpha: bool = False
    uses_score: bool = False
    num_models: int | None = None

    def check(self, mode: str, num_models: int, weights: Sequence[float] | None, alpha: float | None) -> None:
        """Raise ``ValueError`` for arguments this mode does not take, before any model is loaded."""
        if self.num_models is not None and num_models != self.num_models:
            raise ValueError(f"{mode} fuses {self.num_models} models, got {num_models}")
        if self.uses_score and (weights is not None or alpha is not None):
            raise ValueError(f"{mode} takes neither weights nor alpha: the held-out score chooses the models")
        if self.uses_alpha and weights is not None:
            raise ValueError(f"{mode} takes alpha, not weights")
        if not self.uses_alpha and alpha is not None:
            raise ValueError(f"{mode} takes weights, not alpha (WiSE-FT's interpolation coefficient)")
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if weights is not None:
            normalised_weights(weights, num_models)

    def check_score(self, mode: str, has_score: bool) -> None:
        """Raise ``ValueError`` if this mode needs a held-out score and ``not has_score``, or has one it does not
        use."""
        if self.uses_score and not has_score:
            raise ValueError(f"{mode} keeps a model only if the soup's accuracy on a labelled held-out set does not "
                             "drop: give one from the source domain (hfadapt fuse --validation_file, or "
                             "--dataset_name and --split), never target labels")
        if not self.uses_score and has_score:
            raise ValueError(f"{mode} uses no held-out set (only greedy_soup does): leave out the held-out data")


def _greedy_soup(models: list[PreTrainedModel], score: HeldOutScore) -> PreTrainedModel:
    """:func:`~hfadapt.fusion.soup.greedy_soup`'s model, its choice recorded in ``config.greedy_soup``
    (``ingredients``: indices into ``models``; ``score`` and ``individual_scores``: the held-out scores)."""
    result = greedy_soup(models, score)
    result.model.config.greedy_soup = {"ingredients": result.ingredients, "score": result.score,
                                       "individual_scores": result.individual_scores}
    return result.model


FUSION_MODES: dict[str, FusionMode] = {
    "ensemble": FusionMode(lambda models, weights, _, __: EnsembleForClassification.from_members(models, weights)),
    "uniform_soup": FusionMode(lambda models, weights, _, __: uniform_soup(models, weights)),
    "greedy_soup": FusionMode(lambda models, _, __, score: _greedy_soup(models, score), uses_score=True),
    "wise_ft": FusionMode(lambda models, _, alpha, __: wise_ft(models[0], models[1], 0.5 if alpha is None else alpha),
                          uses_alpha=True, num_models=2),
}
"""``hfadapt fuse --mode`` -> its :class:`FusionMode`."""


def fuse_folders(model_dirs: Sequence[str | Path], output_dir: str | Path, mode: str = "ensemble",
                 alpha: float | None = None, weights: Sequence[float] | None = None,
                 score: HeldOutScore | None = None) -> Path:
    """Load the classifiers saved in ``model_dirs``, fuse them by ``mode`` and save the result to ``output_dir``
    (with the first folder's tokenizer or processor), where ``AutoModelFor*Classification.from_pretrained`` loads
    it (after ``import hfadapt`` for an ensemble). Returns ``output_dir``.

    Args:
        model_dirs: saved model folders (``save_pretrained``, e.g. ``AdaptTrainer.save_model``).
        mode: ``"ensemble"`` (:class:`~hfadapt.fusion.EnsembleForClassification`), ``"uniform_soup"``
            (:func:`~hfadapt.fusion.uniform_soup`), ``"greedy_soup"`` (:func:`~hfadapt.fusion.greedy_soup`, its
            choice saved in the config's ``greedy_soup``) or ``"wise_ft"`` (:func:`~hfadapt.fusion.wise_ft`, two
            folders: source-only, then adapted).
        alpha: WiSE-FT's coefficient (default 0.5); only for ``wise_ft``.
        weights: member weights for ``ensemble`` and ``uniform_soup`` (default uniform).
        score: ``score(model) -> float``, only for ``greedy_soup`` (and required there): accuracy on a labelled
            held-out set of the source domain, e.g. source validation. Never target labels: choosing on them is
            not unsupervised adaptation and overstates the result.

    Raises:
        FileNotFoundError: a missing folder or ``config.json``.
        ValueError: an unknown mode, an argument the mode does not take, or models that cannot be fused (naming
            the difference).
    """
    if mode not in FUSION_MODES:
        raise ValueError(f"mode must be one of {sorted(FUSION_MODES)}, got {mode!r}")
    if not model_dirs:
        raise ValueError("give at least one model folder")
    FUSION_MODES[mode].check(mode, len(model_dirs), weights, alpha)
    FUSION_MODES[mode].check_score(mode, score is not None)
    model_dirs = [check_model_folder(d) for d in model_dirs]  # every folder, before any model is loaded
    check_same_labels([AutoConfig.from_pretrained(d) for d in model_dirs], [str(d) for d in model_dirs])
    models = [load_classifier(d) for d in model_dirs]
    fused = FUSION_MODES[mode].build(models, weights, alpha, score)
    return save_fused(fused, output_dir, processor_from=model_dirs[0])
