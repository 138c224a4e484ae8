"""Fused models on the benchmark grid: which runs of a pair and seed to fuse, and how (:mod:`hfadapt.fusion`).

A fusion is written ``<mode>:<member>/<member>...``: a mode of :data:`hfadapt.fusion.FUSION_MODES` and the
methods of the grid whose trained models it fuses, each as the grid names it (a method, ``dann+mmd``, or a method
with settings, ``self_training:self_training_warmup=0``). ``ensemble:self_training/adamatch`` averages the two
models' probabilities; ``wise_ft:none/adamatch`` interpolates halfway from the source-only weights to AdaMatch's;
``greedy_soup:none/self_training/adamatch`` soups the members whose addition does not lower source-validation
accuracy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

import torch
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, PreTrainedModel

from ..data import TransferSplits
from ..evaluation.scoring import score_classifier, source_val_accuracy
from ..fusion import FUSION_MODES, EnsembleForClassification
from ..trainer.config import AdaptConfig
from .prior_matching import prior_matched_scores

MEMBER_SEPARATOR = "/"
"""Between the members of a fusion: ``+`` combines methods and ``,`` separates a method's settings."""


def file_name_part(spec: str) -> str:
    """``spec`` (a method or fusion spec) as part of one file or folder name: ``/`` and ``%`` percent-encoded."""
    return quote(spec, safe=":+,=")


@dataclass(frozen=True)
class Fusion:
    """One fused model of the grid: ``mode`` (a key of :data:`~hfadapt.fusion.FUSION_MODES`) over the trained
    models of ``members`` (method specs of the grid), with uniform member weights and WiSE-FT's alpha 0.5.

    Raises:
        ValueError: an unknown mode, no member, a member named twice, or a member count the mode does not take.
    """

    mode: str
    members: tuple[str, ...]

    def __post_init__(self):
        if self.mode not in FUSION_MODES:
            raise ValueError(f"fusion mode {self.mode!r} is not one of {sorted(FUSION_MODES)}")
        if not self.members or not all(self.members):
            raise ValueError(f"fusion {self.name!r} names no member (or an empty one): write "
                             f"'<mode>:<method>{MEMBER_SEPARATOR}<method>'")
        if len(set(self.members)) != len(self.members):
            raise ValueError(f"fusion {self.name!r} names a member twice")
        FUSION_MODES[self.mode].check(self.mode, len(self.members), None, None)

    @classmethod
    def parse(cls, spec: str) -> Fusion:
        """``"ensemble:self_training/adamatch"`` -> ``Fusion("ensemble", ("self_training", "adamatch"))``.

        Raises:
            ValueError: a spec without ``:``, or as :class:`Fusion`.
        """
        mode, sep, members = spec.partition(":")
        if not sep:
            raise ValueError(f"fusion {spec!r}: write '<mode>:<method>{MEMBER_SEPARATOR}<method>', the mode one of "
                             f"{sorted(FUSION_MODES)}")
        return cls(mode, tuple(members.split(MEMBER_SEPARATOR)))

    @property
    def name(self) -> str:
        """The spec, as the fusion's rows name their method."""
        return f"{self.mode}:{MEMBER_SEPARATOR.join(self.members)}"

    @property
    def file_name(self) -> str:
        """:attr:`name` as one file or folder name (``/`` and ``%`` percent-encoded), e.g. for a claim."""
        return file_name_part(self.name)

    @property
    def uses_score(self) -> bool:
        """Whether the fusion chooses among its members by a held-out score (``greedy_soup``)."""
        return FUSION_MODES[self.mode].uses_score

    def build(self, models: Mapping[str, PreTrainedModel],
              score: Callable[[PreTrainedModel], float] | None = None) -> PreTrainedModel:
        """The fused model of ``models`` (``{member: trained model}``, every member present), in member order.

        Args:
            score: for a fusion that :attr:`uses_score`, ``score(model) -> float``: source-validation accuracy
                (never target labels).

        Raises:
            KeyError: a member without a model.
            ValueError: models that cannot be fused (:mod:`hfadapt.fusion`: other labels or tensors), or a
                missing or unused ``score``.
        """
        FUSION_MODES[self.mode].check_score(self.mode, score is not None)
        return FUSION_MODES[self.mode].build([models[m] for m in self.members], None, None, score)


def fusion_members(fusions: list[Fusion]) -> list[str]:
    """Every member of ``fusions``, each once, in the order they are first named."""
    return list(dict.fromkeys(m for fusion in fusions for m in fusion.members))


def model_factory(model_path: str, splits: TransferSplits) -> Callable[[], PreTrainedModel]:
    """A function building a fresh sequence classifier from ``model_path`` with a head for ``splits``' labels: the
    model a member's kept ``state_dict`` loads into."""
    def make_model():
        return AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=len(splits.label_names))
    return make_model


def fused_scores(fusion: Fusion, trained: Mapping[str, Mapping[str, torch.Tensor]],
                 make_model: Callable[[], PreTrainedModel], splits: TransferSplits, tokenizer,
                 config: AdaptConfig, prior_matching: bool = False) -> dict:
    """The scores a run reports (:func:`~hfadapt.evaluation.scoring.score_classifier`: source-validation and target
    accuracy, and ``config.label_free_validators``) of ``fusion`` over ``trained`` (``{member: state_dict}``,
    loaded into ``make_model()``), on ``config.device`` and in its precision (``config.bf16``), with the time it took
    (``wall_time_s``); for a greedy soup also the members it kept and their source-validation accuracy
    (``greedy_soup``), which chose them; with ``prior_matching``, a fused model with one head (not an ensemble) is
    also scored after target prior matching (:func:`~hfadapt.benchmarking.prior_matching.prior_matched_scores`,
    ``prior_matched``).

    Raises:
        KeyError: a member without weights.
        ValueError: weights that do not fit the model, or models that cannot be fused.
    """
    models = {}
    for member in fusion.members:
        models[member] = make_model()
        models[member].load_state_dict(trained[member])
    start = time.perf_counter()
    collator = DataCollatorWithPadding(tokenizer)
    score = None
    if fusion.uses_score:  # a greedy soup chooses its ingredients by source-validation accuracy, never target labels
        def score(model):
            return source_val_accuracy(model.to(config.device), splits, collator, bf16=config.bf16)
    model = fusion.build(models, score).to(config.device).eval()  # where the runs trained
    scores = score_classifier(model, splits, collator,
                              validators=config.label_free_validators, max_rows=config.label_free_max_rows,
                              bf16=config.bf16)
    if fusion.uses_score:
        choice = model.config.greedy_soup
        alone = dict(zip(fusion.members, choice["individual_scores"], strict=True))
        scores["greedy_soup"] = {"ingredients": [fusion.members[i] for i in choice["ingredients"]],
                                 "member_source_val_accuracy": alone}
    wall_time_s = round(time.perf_counter() - start, 1)
    if prior_matching and not isinstance(model, EnsembleForClassification):
        scores["prior_matched"] = prior_matched_scores(model, splits, tokenizer, config)
    return {**scores, "wall_time_s": wall_time_s}
