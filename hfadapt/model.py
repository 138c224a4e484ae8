"""`AdaptModel`: a task model plus training-only alignment heads, run as one module."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from .balancing import ALIGNMENT_BALANCINGS, feature_gradient_norm, gradient_ratio, reversal_factor
from .distributed import gather_rows, world_size
from .features import FEATURE_SOURCES, HeadInputCapture, find_classification_head, mean_pooled, unwrap_peft
from .grl import GradientScale
from .rng import RandomStream


@dataclass
class AdaptModelOutput(ModelOutput):
    """Output of :class:`AdaptModel`.

    Attributes:
        loss: scalar, ``loss_task + sum_m weight_m * loss_m`` in training (with gradient balancing the value keeps
            the configured weights and the gradient carries the balanced ones), the task loss in evaluation.
        logits: ``(N, num_labels)`` of the rows that went through the model.
        components: training only: detached scalars ``loss_task``, ``loss_<method>``, ``<method>_<metric>``.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    components: dict[str, torch.Tensor] | None = None


class AdaptModel(nn.Module):
    """A ``*ForSequenceClassification`` (or image classification) model with alignment heads beside it.

    One forward runs over the concatenated source and target rows of a batch; the task loss (cross-entropy)
    uses labelled source rows only (per source domain ``d``, weighted by ``lambda_d``, and per row by an
    instance-weighting method's ``source_weights`` if one runs); each alignment method compares source and
    target features, the representation the classification head reads (``feature_source="head_input"``) or the
    mean-pooled last hidden state (``"mean_pooled"``).

    Keeping the heads inside one ``nn.Module`` makes them go through ``accelerator.prepare`` and DDP with the
    backbone, so their gradients are synchronised. Only ``task_model`` is what a user gets back.

    Args:
        task_model: a transformers classification model, optionally wrapped by ``peft``.
        methods: ``nn.ModuleDict`` of :class:`~hfadapt.methods.AlignmentMethod` by name (empty: source-only).
        method_weights: loss weight of each method by name.
        feature_source: ``"head_input"`` or ``"mean_pooled"``.
        num_domains: source domains + 1; the target domain id is ``num_domains - 1``.
        domain_names: a name per domain id (sources then target), used in logged keys.
        source_domain_weights: ``lambda_d`` per source domain in the task loss ``sum_d lambda_d L_d`` (normalised
            to sum 1; ``None``: equal).
        skip_target_rows: with no method (source-only), leave the target rows of a training batch out of the
            forward (half the cost; the dropout masks then differ from a method's run).
        alignment_balancing: ``"fixed"`` (``L_task + sum_m w_m L_m``) or ``"gradient"``: the weight of each
            method whose loss scale follows the feature scale (``feature_scale_dependent``: MMD, JAN, CORAL) becomes a
            share of the task loss's gradient on the features, and so does the GRL coefficient of each adversarial
            method (DANN, CDAN: its reversed gradient, not its discriminator's); see :mod:`hfadapt.balancing`,
            logged as ``<name>_balance``.
        method_seed: seed of the random stream the methods draw from (discriminator dropout, UDALM's masks;
            :mod:`hfadapt.rng`), kept apart from the global one so that the backbone's dropout masks are the
            source-only run's (``AdaptTrainer`` derives it from the run's seed: :func:`hfadapt.rng.stream_seed`).

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
        domain_names: Sequence[str] | None = None,
        source_domain_weights: Sequence[float] | None = None,
        skip_target_rows: bool = False,
        alignment_balancing: str = "fixed",
        method_seed: int = 0,
    ):
        super().__init__()
        if alignment_balancing not in ALIGNMENT_BALANCINGS:
            raise ValueError(f"alignment_balancing must be one of {ALIGNMENT_BALANCINGS}, got {alignment_balancing!r}")
        if feature_source not in FEATURE_SOURCES:
            raise ValueError(f"feature_source must be one of {FEATURE_SOURCES}, got {feature_source!r}")
        self.task_model = task_model
        self.methods = methods if methods is not None else nn.ModuleDict()
        self.method_weights = {name: float((method_weights or {}).get(name, 1.0)) for name in self.methods}
        self.feature_source = feature_source
        self.skip_target_rows = skip_target_rows
        self.alignment_balancing = alignment_balancing
        self.weight_factor = 1.0
        self.method_rng = RandomStream(method_seed)
        self.num_domains = num_domains
        self.domain_names = list(domain_names) if domain_names is not None else [
            *(f"source{d}" for d in range(num_domains - 1)), "target"
        ]
        if len(self.domain_names) != num_domains:
            raise ValueError(f"domain_names has {len(self.domain_names)} names for {num_domains} domains")
        self.set_source_domain_weights(source_domain_weights)
        task_config = unwrap_peft(task_model).config
        self.extra_tasks = list(getattr(task_config, "extra_tasks", None) or [])
        self.main_task = getattr(task_config, "main_task", None) if self.extra_tasks else None
        self.task_weights = dict(getattr(task_config, "task_weights", None) or {})
        self.head_name, head = find_classification_head(task_model)
        self._capture = HeadInputCapture(head)

    @property
    def config(self):
        """The task model's configuration."""
        return self.task_model.config

    @property
    def target_domain(self) -> int:
        """The domain id of the target rows (``num_domains - 1``; sources are ``0 .. num_domains - 2``)."""
        return self.num_domains - 1

    def set_grl_coefficient(self, value: float) -> None:
        """Set the gradient-reversal coefficient of every method that has one."""
        for method in self.methods.values():
            if method.adversarial:
                method.set_grl_coefficient(value)

    def set_source_domain_weights(self, weights: Sequence[float] | None) -> None:
        """Set ``lambda_d`` of the task loss, one per source domain (``None``: equal); normalised to sum 1.

        Raises:
            ValueError: on a wrong count, a negative or non-finite value, or all zeros.
        """
        n_sources = self.num_domains - 1
        values = [1.0] * n_sources if weights is None else [float(w) for w in weights]
        if len(values) != n_sources or any(not math.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
            raise ValueError(f"source domain weights must be {n_sources} finite numbers >= 0, not all 0; got {weights}")
        self.source_domain_weights = [w / sum(values) for w in values]

    def set_progress(self, progress: float) -> None:
        """Tell every method the fraction of training done (see ``AlignmentMethod.set_progress``)."""
        for method in self.methods.values():
            method.set_progress(progress)

    def set_weight_factor(self, value: float) -> None:
        """Scale the loss weight of every method *without* gradient reversal by ``value`` in ``[0, 1]`` (the
        warm-start of ``AdaptConfig.weight_schedule``); adversarial methods are scheduled by their GRL instead."""
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"loss-weight factor must be in [0, 1], got {value}")
        self.weight_factor = float(value)

    def effective_weight(self, name: str) -> float:
        """The weight method ``name``'s loss gets now: its configured weight, times the schedule's factor unless
        the method is adversarial (has a gradient-reversal coefficient)."""
        return self.method_weights[name] * (self.weight_factor if self._is_scheduled(name) else 1.0)

    def _is_scheduled(self, name: str) -> bool:
        """Non-adversarial methods follow the weight schedule and balancing; adversarial ones their GRL."""
        return not self.methods[name].adversarial

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None):
        """Delegate to the task model (the heads are too small to checkpoint)."""
        self.task_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gradient_checkpointing_kwargs)

    def _run(self, inputs: dict, with_features: bool, hidden_states: bool = False):
        """Forward the task model; return its output and, if asked, the ``(N, F)`` alignment features."""
        want_hidden = hidden_states or (with_features and self.feature_source == "mean_pooled")
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
    def features_and_logits(self, **inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(N, F)`` features the alignment heads read and the ``(N, C)`` logits, for a batch of task-model
        inputs (no gradient). Runs in the module's current mode; call ``.eval()`` first for deterministic features.
        """
        outputs, features = self._run(inputs, with_features=True)
        return features, outputs.logits

    def _task_loss(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        domain: torch.Tensor | None,
        source_weights: torch.Tensor | None = None,
        task: str | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Cross-entropy on the labelled source rows: ``sum_d lambda_d * L_d`` with ``L_d`` the (importance-weighted)
        mean over source domain ``d``'s rows; one source domain gives the plain mean. Returns the loss and, with
        several source domains, ``loss_task_<domain>`` and ``accuracy_<domain>`` components."""
        labelled = labels != -100
        if domain is not None:
            labelled &= domain != self.target_domain  # target labels never reach a loss
        if not labelled.any():
            return logits.sum() * 0.0, {}
        per_row = F.cross_entropy(logits[labelled].float(), labels[labelled], reduction="none")
        row_weight = torch.ones_like(per_row)
        if source_weights is not None:
            full = torch.ones(len(labels), device=per_row.device, dtype=per_row.dtype)
            full[domain != self.target_domain] = source_weights.to(per_row.dtype)
            row_weight = full[labelled]
        if domain is None or self.num_domains == 2:
            return (per_row * row_weight).sum() / row_weight.sum(), {}
        row_domain = domain[labelled]
        correct = (logits[labelled].argmax(-1) == labels[labelled]).float()
        loss, components = per_row.new_zeros(()), {}
        for d, (name, lam) in enumerate(zip(self.domain_names, self.source_domain_weights, strict=False)):
            in_d = row_domain == d
            if not in_d.any():
                continue
            loss_d = (per_row[in_d] * row_weight[in_d]).sum() / row_weight[in_d].sum()
            loss = loss + lam * loss_d
            tag = f"{task}_{name}" if task else name
            components[f"loss_task_{tag}"] = loss_d.detach()
            components[f"accuracy_{tag}"] = correct[in_d].mean()
        return loss, components

    def _all_task_losses(self, outputs, labels, task_labels, domain, source_weights=None):
        """``sum_i lambda_i L_i`` over the tasks (one task: ``L_task``); components per task and source domain."""
        if not self.extra_tasks:
            return self._task_loss(outputs.logits, labels, domain, source_weights)
        pairs = [(self.main_task, outputs.logits, labels)]
        pairs += [(t, outputs.task_logits[t], task_labels[t]) for t in self.extra_tasks if t in task_labels]
        total, components = None, {}
        for name, logits, y in pairs:
            if y is None:
                continue
            loss, parts = self._task_loss(logits, y, domain, source_weights, task=name)
            weighted = self.task_weights.get(name, 1.0) * loss
            total = weighted if total is None else total + weighted
            components[f"loss_task_{name}"] = loss.detach()
            components.update(parts)
        return total, components

    def forward(self, labels: torch.Tensor | None = None, domain: torch.Tensor | None = None,
                **inputs) -> AdaptModelOutput:
        task_labels = {t: inputs.pop(t) for t in self.extra_tasks if t in inputs}
        aligning = self.training and domain is not None and len(self.methods) > 0
        if self.training and domain is not None and not aligning and self.skip_target_rows:
            # Source-only baseline: the target rows of the batch are not needed, skip their forward.
            keep = domain != self.target_domain
            inputs = {k: v[keep] if torch.is_tensor(v) and v.shape[:1] == keep.shape else v for k, v in inputs.items()}
            labels = labels[keep] if labels is not None else None
            task_labels = {t: v[keep] for t, v in task_labels.items()}
            domain = domain[keep]

        contexts: dict[str, dict] = {}
        if aligning:
            with self.method_rng.active(domain.device):  # UDALM's masks: the backbone's dropout stays the baseline's
                for name, method in self.methods.items():
                    inputs, contexts[name] = method.prepare_inputs(inputs, domain)
        need_hidden = aligning and any(m.needs_hidden_states for m in self.methods.values())
        outputs, features = self._run(inputs, with_features=aligning, hidden_states=need_hidden)
        logits = outputs.logits
        if not self.training:
            loss = None if labels is None else self._all_task_losses(outputs, labels, task_labels, domain)[0]
            return AdaptModelOutput(loss=loss, logits=logits)

        components: dict[str, torch.Tensor] = {}
        alignment = logits.sum() * 0.0
        source_weights = None
        method_losses: dict[str, torch.Tensor] = {}
        reversal_scales: dict[str, GradientScale] = {}
        gathered = None
        if aligning:
            has_both = bool((domain == self.target_domain).any()) and bool((domain != self.target_domain).any())
            # method heads draw (dropout) from a stream of their own: the backbone's dropout stays the baseline's
            with self.method_rng.active(logits.device):
                for name, method in self.methods.items():
                    if not has_both:
                        # Keep every head in the graph so DDP's reducer sees all parameters on every step.
                        alignment = alignment + sum(p.sum() * 0.0 for p in method.parameters())
                        continue
                    context = contexts.get(name, {})
                    if method.needs_hidden_states:
                        context = {**context, "hidden_states": outputs.hidden_states[-1]}
                    method_features = features
                    if self.alignment_balancing == "gradient" and not self._is_scheduled(name):
                        # the reversed gradient is rescaled once the task's gradient is known (below)
                        reversal_scales[name] = GradientScale()
                        method_features = reversal_scales[name](features)
                    if method.batch_statistic and world_size() > 1:
                        if gathered is None:  # every process's rows, gradients flowing back (hfadapt.distributed)
                            gathered = (gather_rows(features), gather_rows(domain), gather_rows(logits))
                        rows = (gathered if method_features is features
                                else (gather_rows(method_features), *gathered[1:]))
                        out = method(*rows, **context)
                    else:
                        out = method(method_features, domain, logits, **context)
                    method_losses[name] = out.loss
                    components[f"loss_{name}"] = out.loss.detach()
                    components.update({f"{name}_{k}": v.detach() for k, v in out.metrics.items()})
                    if out.source_weights is not None:
                        if source_weights is not None:
                            raise ValueError("two methods of this run weight the source rows; combine at most one "
                                             "of them")
                        source_weights = out.source_weights.detach()
        loss = None
        if labels is not None:
            loss, per_domain = self._all_task_losses(outputs, labels, task_labels, domain, source_weights)
            components["loss_task"] = loss.detach()
            components.update(per_domain)
        task_norm = None
        if method_losses and loss is not None and self.alignment_balancing == "gradient":
            task_norm = feature_gradient_norm(loss, features)
        for name, method_loss in method_losses.items():
            weight = torch.tensor(self.effective_weight(name), device=method_loss.device)
            balanced = self._is_scheduled(name) and self.methods[name].feature_scale_dependent
            ratio = gradient_ratio(task_norm, method_loss, features) if balanced else None
            if name in reversal_scales:
                factor = reversal_factor(task_norm, method_loss, features, self.methods[name].grl_coefficient)
                if factor is not None:
                    reversal_scales[name].factor = factor
                    components[f"{name}_balance"] = factor
                alignment = alignment + weight * method_loss
            elif ratio is not None:
                # gradient r * w * dL_m, value w * L_m: the logged loss stays comparable with a fixed-weight run
                alignment = alignment + weight * (ratio * method_loss - (ratio - 1) * method_loss.detach())
                weight = weight * ratio
                components[f"{name}_balance"] = ratio
            else:
                alignment = alignment + weight * method_loss
            components[f"{name}_weight"] = weight
        penalty = getattr(outputs, "soft_sharing_penalty", None)  # a multi-task model's soft sharing (multitask.py)
        if penalty is not None and loss is not None:
            loss = loss + penalty
            components["loss_soft_sharing"] = penalty.detach()
        loss = alignment if loss is None else loss + alignment
        return AdaptModelOutput(loss=loss, logits=logits, components=components)
