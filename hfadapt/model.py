"""`AdaptModel`: a task model plus training-only alignment heads, run as one module."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from .features import FEATURE_SOURCES, HeadInputCapture, find_classification_head, mean_pooled


@dataclass
class AdaptModelOutput(ModelOutput):
    """Output of :class:`AdaptModel`.

    Attributes:
        loss: scalar, ``loss_task + sum_m weight_m * loss_m`` in training, the task loss in evaluation.
        logits: ``(N, num_labels)`` of the rows that went through the model.
        components: training only: detached scalars ``loss_task``, ``loss_<method>``, ``<method>_<metric>``.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    components: dict[str, torch.Tensor] | None = None


class AdaptModel(nn.Module):
    """A ``*ForSequenceClassification`` (or image classification) model with alignment heads beside it.

    One forward runs over the concatenated source and target rows of a batch; the task loss (cross-entropy)
    uses labelled source rows only; each alignment method compares source and target features, the
    representation the classification head reads (``feature_source="head_input"``) or the mean-pooled last
    hidden state (``"mean_pooled"``).

    Keeping the heads inside one ``nn.Module`` makes them go through ``accelerator.prepare`` and DDP with the
    backbone, so their gradients are synchronised. Only ``task_model`` is what a user gets back.

    Args:
        task_model: a transformers classification model, optionally wrapped by ``peft``.
        methods: ``nn.ModuleDict`` of :class:`~hfadapt.methods.AlignmentMethod` by name (empty: source-only).
        method_weights: loss weight of each method by name.
        feature_source: ``"head_input"`` or ``"mean_pooled"``.
        num_domains: source domains + 1; the target domain id is ``num_domains - 1``.

    Inputs of ``forward``: the task model's inputs (``input_ids (N, L)``, ``attention_mask (N, L)``, ...),
    ``labels (N,)`` long with -100 on unlabelled rows, ``domain (N,)`` long (absent in evaluation).
    """

    accepts_loss_kwargs = False  # our loss is a per-batch mean; the trainer scales it for accumulation

    def __init__(
        self,
        task_model: nn.Module,
        methods: nn.ModuleDict | None = None,
        method_weights: dict[str, float] | None = None,
        feature_source: str = "head_input",
        num_domains: int = 2,
    ):
        super().__init__()
        if feature_source not in FEATURE_SOURCES:
            raise ValueError(f"feature_source must be one of {FEATURE_SOURCES}, got {feature_source!r}")
        self.task_model = task_model
        self.methods = methods if methods is not None else nn.ModuleDict()
        self.method_weights = {name: float((method_weights or {}).get(name, 1.0)) for name in self.methods}
        self.feature_source = feature_source
        self.num_domains = num_domains
        self.head_name, head = find_classification_head(task_model)
        self._capture = HeadInputCapture(head)

    @property
    def config(self):
        """The task model's configuration."""
        return self.task_model.config

    @property
    def target_domain(self) -> int:
        return self.num_domains - 1

    def set_grl_coefficient(self, value: float) -> None:
        """Set the gradient-reversal coefficient of every method that has one."""
        for method in self.methods.values():
            if hasattr(method, "set_grl_coefficient"):
                method.set_grl_coefficient(value)

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None):
        """Delegate to the task model (the heads are too small to checkpoint)."""
        self.task_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gradient_checkpointing_kwargs)

    def _run(self, inputs: dict, with_features: bool):
        """Forward the task model; return its output and, if asked, the ``(N, F)`` alignment features."""
        want_hidden = with_features and self.feature_source == "mean_pooled"
        self._capture.enabled = with_features and self.feature_source == "head_input"
        try:
            outputs = self.task_model(**inputs, output_hidden_states=want_hidden or None)
        finally:
            self._capture.enabled = False
        if not with_features:
            return outputs, None
        if self.feature_source == "head_input":
            return outputs, self._capture.pop()
        return outputs, mean_pooled(outputs.hidden_states[-1], inputs.get("attention_mask"))

    @torch.no_grad()
    def extract_features(self, **inputs) -> torch.Tensor:
        """The ``(N, F)`` features the alignment heads read, for a batch of task-model inputs (no gradient).

        Runs in the module's current mode; call ``.eval()`` first for deterministic features.
        """
        return self._run(inputs, with_features=True)[1]

    def forward(self, labels: torch.Tensor | None = None, domain: torch.Tensor | None = None, **inputs) -> AdaptModelOutput:
        aligning = self.training and domain is not None and len(self.methods) > 0
        if self.training and domain is not None and not aligning:
            # Source-only baseline: the target rows of the batch are not needed, skip their forward.
            keep = domain != self.target_domain
            inputs = {k: v[keep] if torch.is_tensor(v) and v.shape[:1] == keep.shape else v for k, v in inputs.items()}
            labels = labels[keep] if labels is not None else None
            domain = domain[keep]

        outputs, features = self._run(inputs, with_features=aligning)
        logits = outputs.logits

        loss = None
        if labels is not None:
            labelled = labels != -100
            if domain is not None:
                labelled &= domain != self.target_domain  # target labels never reach a loss
            if labelled.any():
                loss = F.cross_entropy(logits[labelled].float(), labels[labelled])
            else:
                loss = logits.sum() * 0.0
        if not self.training:
            return AdaptModelOutput(loss=loss, logits=logits)

        components: dict[str, torch.Tensor] = {}
        if loss is not None:
            components["loss_task"] = loss.detach()
        if aligning:
            has_both = bool((domain == self.target_domain).any()) and bool((domain != self.target_domain).any())
            total = loss if loss is not None else logits.sum() * 0.0
            for name, method in self.methods.items():
                if has_both:
                    out = method(features, domain, logits)
                    total = total + self.method_weights[name] * out.loss
                    components[f"loss_{name}"] = out.loss.detach()
                    components.update({f"{name}_{k}": v.detach() for k, v in out.metrics.items()})
                else:
                    # Keep every head in the graph so DDP's reducer sees all parameters on every step.
                    total = total + sum(p.sum() * 0.0 for p in method.parameters())
            loss = total
        return AdaptModelOutput(loss=loss, logits=logits, components=components)
