"""Prediction ensembles: several trained classifiers saved as one model that averages their probabilities.

The ensemble of ``K`` members with weights ``w_k`` (normalised to sum 1) predicts ``p(y|x) = sum_k w_k
softmax(z_k(x))``, and returns ``logits = log p(y|x)``, so ``argmax`` and ``softmax`` of its output are those of the
averaged probabilities (Lakshminarayanan et al., "Simple and Scalable Predictive Uncertainty Estimation using Deep
Ensembles", NeurIPS 2017). After ``import hfadapt``, ``AutoModelForSequenceClassification.from_pretrained(folder)``
(or ``AutoModelForImageClassification``) loads a saved ensemble without remote code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForImageClassification,
    AutoModelForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.modeling_outputs import ImageClassifierOutput, SequenceClassifierOutput

from .averaging import normalised_weights
from .compat import CLASSIFICATION_TASKS, check_same_labels, classification_task

MEMBER_CLASSES = {"sequence": AutoModelForSequenceClassification, "image": AutoModelForImageClassification}
"""The Auto class that builds a member of each :data:`~hfadapt.fusion.compat.CLASSIFICATION_TASKS` task."""
OUTPUT_CLASSES = {"sequence": SequenceClassifierOutput, "image": ImageClassifierOutput}


class EnsembleConfig(PretrainedConfig):
    """Configuration of :class:`EnsembleForClassification`: its members' configs and weights.

    Args:
        member_configs: each member's config (a ``PretrainedConfig`` or its ``to_dict()``, with ``model_type``).
        member_task: ``"sequence"`` or ``"image"`` classification (which Auto class builds the members).
        member_weights: ``w_k >= 0`` per member, normalised to sum 1; default: uniform.
        **kwargs: ``PretrainedConfig`` arguments; ``id2label``/``label2id`` default to the members'.

    Raises:
        ValueError: members that differ in ``num_labels`` or ``id2label`` (naming which, and the values), or are
            not single-label classifiers; weights that are negative, not finite, all zero, or not one per member;
            an unknown ``member_task``.
    """

    model_type = "hfadapt-ensemble"

    def __init__(self, member_configs=None, member_task: str = "sequence", member_weights=None, **kwargs):
        self.member_configs = [c.to_dict() if isinstance(c, PretrainedConfig) else dict(c)
                               for c in (member_configs or [])]
        if member_task not in CLASSIFICATION_TASKS:
            raise ValueError(f"member_task must be one of {CLASSIFICATION_TASKS}, got {member_task!r}")
        self.member_task = member_task
        self.member_weights = normalised_weights(member_weights, len(self.member_configs))
        configs = self.members()
        if configs:
            check_same_labels(configs)
            kwargs.setdefault("id2label", configs[0].id2label)
            kwargs.setdefault("label2id", configs[0].label2id)
        super().__init__(**kwargs)

    def members(self) -> list[PretrainedConfig]:
        """The members' configs as ``PretrainedConfig`` objects."""
        return [AutoConfig.for_model(**values) for values in self.member_configs]


class EnsembleForClassification(PreTrainedModel):
    """Runs every member and returns ``logits = log(sum_k w_k softmax(z_k))``, shape ``(N, C)``.

    Inputs: the members' own (``input_ids (N, L)``, ``attention_mask (N, L)``, ... or ``pixel_values (N, 3, H,
    W)``); all members read the same inputs, so they must share a tokenizer or image processor. With ``labels
    (N,)`` the loss is the cross-entropy of the averaged probabilities (rows labelled -100 left out).

    One class serves both tasks; it is registered with ``AutoModelForSequenceClassification`` and
    ``AutoModelForImageClassification``.

    Raises:
        ValueError: a config without members.

    >>> ensemble = EnsembleForClassification.from_members([source_only, dann, mmd])  # doctest: +SKIP
    >>> ensemble.save_pretrained("out")  # doctest: +SKIP
    >>> AutoModelForSequenceClassification.from_pretrained("out")  # after `import hfadapt`  # doctest: +SKIP
    """

    config_class = EnsembleConfig
    # forward returns a per-batch mean loss: Trainer must not pass num_items_in_batch
    accepts_loss_kwargs = False

    def __init__(self, config: EnsembleConfig, members: Sequence[PreTrainedModel] | None = None):
        super().__init__(config)
        if members is None:
            members = [MEMBER_CLASSES[config.member_task].from_config(c) for c in config.members()]
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.main_input_name = members[0].main_input_name
        self.post_init()

    @classmethod
    def from_members(cls, models: Sequence[PreTrainedModel],
                     weights: Sequence[float] | None = None) -> EnsembleForClassification:
        """An ensemble over ``models`` (used as they are, not copied), weighted by ``weights`` (default uniform).

        Raises:
            ValueError: as :class:`EnsembleConfig`; members of different tasks (text and images).
        """
        tasks = [classification_task(m.config) for m in models]
        if len(set(tasks)) > 1:
            raise ValueError(f"the members classify different inputs: {tasks}")
        config = EnsembleConfig(member_configs=[m.config for m in models], member_task=tasks[0] if tasks else
                                "sequence", member_weights=weights)
        return cls(config, members=list(models))

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput | ImageClassifierOutput:
        named = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids,
                 "pixel_values": pixel_values}
        inputs = {k: v for k, v in named.items() if v is not None} | kwargs
        # (K, N, C) log-probabilities of every member, in float32 for a stable log-sum-exp
        log_probs = torch.stack([F.log_softmax(member(**inputs).logits.float(), dim=-1) for member in self.members])
        log_weights = torch.tensor(self.config.member_weights, device=log_probs.device).log().view(-1, 1, 1)
        logits = torch.logsumexp(log_probs + log_weights, dim=0)  # log sum_k w_k p_k, (N, C)
        loss = F.nll_loss(logits, labels) if labels is not None else None  # the CE of the averaged probabilities
        return OUTPUT_CLASSES[self.config.member_task](loss=loss, logits=logits)


# After `import hfadapt`, the Auto classes load a saved ensemble without remote code.
AutoConfig.register(EnsembleConfig.model_type, EnsembleConfig, exist_ok=True)
AutoModelForSequenceClassification.register(EnsembleConfig, EnsembleForClassification, exist_ok=True)
AutoModelForImageClassification.register(EnsembleConfig, EnsembleForClassification, exist_ok=True)
