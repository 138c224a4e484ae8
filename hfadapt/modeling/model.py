"""`AdaptModel`: a task model plus training-only alignment heads, run as one module."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from ..methods.grl import GradientScale
from ..utils.distributed import gather_rows, world_size
from ..utils.rng import RandomStream
from .balancing import ALIGNMENT_BALANCINGS, feature_gradient_norm, gradient_ratio, reversal_factor
from .features import FEATURE_SOURCES, HeadInputCapture, mean_pooled
from .heads import find_classification_head, unwrap_peft
from .objective import TaskObjective, objective_for
from .rows import merge_rows, select_rows


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
        target_rows_apart: when no method needs the gradient through the target rows of the forward
            (``needs_target_gradient``: FixMatch and AdaMatch read them as detached pseudo-labels, the mean teacher
            not at all), forward them apart without gradient, so the backward pass skips them (about a fifth of an
            AdaMatch step). Leave it off with batch normalisation, whose batch statistics would then differ.
        alignment_balancing: ``"fixed"`` (``L_task + sum_m w_m L_m``) or ``"gradient"``: the weight of each
            method whose loss scale follows the feature scale (``feature_scale_dependent``: MMD, JAN, CORAL) becomes a
            share of the task loss's gradient on the features, and so does the GRL coefficient of each adversarial
            method (DANN, CDAN: its reversed gradient, not its discriminator's); see :mod:`hfadapt.modeling.balancing`,
            logged as ``<name>_balance``.
        method_seed: seed of the random stream the methods draw from (discriminator dropout, UDALM's masks;
            :mod:`hfadapt.utils.rng`), kept apart from the global one so that the backbone's dropout masks are the
            source-only run's (``AdaptTrainer`` derives it from the run's seed: :func:`hfadapt.utils.rng.stream_seed`).
        objective: the :class:`~hfadapt.modeling.objective.TaskObjective` of the task loss; default: the one
        registered for
            the task model's ``config.model_type`` (:func:`~hfadapt.modeling.objective.objective_for`), the
            single-task one
            for a plain classifier.

    Inputs of ``forward``: the task model's inputs (``input_ids (N, L)``, ``attention_mask (N, L)``, ...),
    ``labels (N,)`` long with -100 on unlabelled rows, ``domain (N,)`` long (absent in evaluation).

    Raises:
        ValueError: an unknown ``alignment_balancing`` or ``feature_source``, ``domain_names`` of the wrong length,
            bad ``source_domain_weights``, a task model without a classification head.
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
        target_rows_apart: bool = False,
        alignment_balancing: str = "fixed",
        method_seed: int = 0,
        objective: TaskObjective | None = None,
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
        self.target_rows_apart = target_rows_apart
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
        self.objective = objective if objective is not None else objective_for(unwrap_peft(task_model).config)
        """The hook that picks the task labels and combines the task losses (:mod:`hfadapt.modeling.objective`)."""
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

    def _run_target_rows_apart(self, inputs: dict, domain: torch.Tensor, hidden_states: bool = False):
        """:meth:`_run` with features, the source rows with gradient and the target rows without, their outputs
        merged back into the batch's row order (``target_rows_apart``)."""
        target = domain == self.target_domain
        if target.all() or not target.any():
            return self._run(inputs, with_features=True, hidden_states=hidden_states)
        source_part = self._run(select_rows(inputs, ~target), with_features=True, hidden_states=hidden_states)
        with torch.no_grad():
            target_part = self._run(select_rows(inputs, target), with_features=True, hidden_states=hidden_states)
        return tuple(merge_rows(a, b, target) for a, b in zip(source_part, target_part, strict=True))

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

    def _objective_loss(
        self,
        outputs,
        labels: torch.Tensor,
        task_labels: dict[str, torch.Tensor],
        domain: torch.Tensor | None,
        source_weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The task loss as :attr:`objective` combines it (one task: ``L_task``; a multi-task model: ``sum_i lambda_i
        L_i``), each task's cross-entropy being :meth:`_task_loss` over this batch's ``domain (N,)`` and instance
        weights ``source_weights (N_s,)``. Returns the scalar loss and its components (per task and source domain)."""
        cross_entropy = functools.partial(self._task_loss, domain=domain, source_weights=source_weights)
        return self.objective.task_loss(outputs, labels, task_labels, cross_entropy)

    def forward(self, labels: torch.Tensor | None = None, domain: torch.Tensor | None = None,
                **inputs) -> AdaptModelOutput:
        """Run the task model over a batch; in training, add every alignment method's weighted loss.

        The steps, in order: the objective takes its label columns out of the inputs
        (:meth:`TaskObjective.split_labels <hfadapt.modeling.objective.TaskObjective.split_labels>`); a source-only
        baseline drops the target rows (:meth:`_drop_target_rows`); the methods change the inputs
        (:meth:`_prepare_method_inputs`); one forward (:meth:`_run`); in evaluation, the task loss and the logits are
        returned; in training, each method's loss (:meth:`_method_losses`), the task loss weighted by the methods'
        instance weights (:meth:`_objective_loss`), the methods' losses weighted and balanced
        (:meth:`_weighted_alignment`), the objective's penalties (:meth:`_add_penalties`).

        Args:
            labels: ``(N,)`` long, -100 on unlabelled rows (target rows are never read).
            domain: ``(N,)`` long domain ids (target: :attr:`target_domain`); ``None`` in evaluation.
            **inputs: the task model's inputs (``input_ids (N, L)``, ``attention_mask (N, L)``, ...) and the
                objective's label columns.

        Returns:
            :class:`AdaptModelOutput`; ``components`` in training only.

        Raises:
            ValueError: two methods of the run return instance weights for the source rows.
        """
        inputs, task_labels = self.objective.split_labels(inputs)
        aligning = self.training and domain is not None and len(self.methods) > 0
        if self.training and domain is not None and not aligning and self.skip_target_rows:
            inputs, labels, task_labels, domain = self._drop_target_rows(inputs, labels, task_labels, domain)
        inputs, contexts = self._prepare_method_inputs(inputs, domain) if aligning else (inputs, {})
        need_hidden = aligning and any(m.needs_hidden_states for m in self.methods.values())
        if aligning and self.target_rows_apart and not any(m.needs_target_gradient for m in self.methods.values()):
            outputs, features = self._run_target_rows_apart(inputs, domain, need_hidden)
        else:
            outputs, features = self._run(inputs, with_features=aligning, hidden_states=need_hidden)
        if not self.training:
            loss = None if labels is None else self._objective_loss(outputs, labels, task_labels, domain)[0]
            return AdaptModelOutput(loss=loss, logits=outputs.logits)

        methods = (self._method_losses(outputs, features, domain, contexts) if aligning
                   else _MethodLosses(zero=outputs.logits.sum() * 0.0))
        components = methods.components
        loss = None
        if labels is not None:
            loss, per_domain = self._objective_loss(outputs, labels, task_labels, domain, methods.source_weights)
            components["loss_task"] = loss.detach()
            components.update(per_domain)
        alignment = self._weighted_alignment(methods, loss, features, components)
        if loss is not None:
            loss = self._add_penalties(loss, outputs, components)
        loss = alignment if loss is None else loss + alignment
        return AdaptModelOutput(loss=loss, logits=outputs.logits, components=components)

    # ---- the steps of a training forward ------------------------------------------------------------------

    def _drop_target_rows(self, inputs: dict, labels: torch.Tensor | None, task_labels: dict[str, torch.Tensor],
                          domain: torch.Tensor) -> tuple[dict, torch.Tensor | None, dict[str, torch.Tensor],
                                                         torch.Tensor]:
        """Leave the target rows out of a source-only batch: no loss reads them, so their forward is skipped.

        Every ``(N, ...)`` tensor of ``inputs``, ``labels (N,)``, each of ``task_labels`` and ``domain (N,)`` keep
        their ``N_s`` source rows; other inputs pass unchanged.
        """
        keep = domain != self.target_domain
        inputs = select_rows(inputs, keep)
        labels = labels[keep] if labels is not None else None
        task_labels = {t: v[keep] for t, v in task_labels.items()}
        return inputs, labels, task_labels, domain[keep]

    def _prepare_method_inputs(self, inputs: dict, domain: torch.Tensor) -> tuple[dict, dict[str, dict]]:
        """Let every method change the batch's inputs before the forward (UDALM masks target tokens).

        Returns ``(inputs, contexts)``: the inputs to run and ``{method: keyword arguments for its forward}``. The
        methods draw from their own random stream, so the backbone's dropout masks stay the baseline's.
        """
        contexts: dict[str, dict] = {}
        with self.method_rng.active(domain.device):
            for name, method in self.methods.items():
                inputs, contexts[name] = method.prepare_inputs(inputs, domain)
        return inputs, contexts

    def _method_losses(self, outputs, features: torch.Tensor, domain: torch.Tensor,
                       contexts: dict[str, dict]) -> _MethodLosses:
        """Run every alignment method on the batch's ``features (N, F)``, ``domain (N,)`` and logits ``(N, C)``.

        A batch without both source and target rows runs no method; the heads' parameters then enter the loss times
        zero, so DDP's reducer sees all parameters on every step. With gradient balancing an adversarial method
        reads the features through a :class:`~hfadapt.methods.grl.GradientScale` that :meth:`_weighted_alignment` sets
        once
        the task's gradient is known. The methods draw (dropout) from their own random stream.

        Raises:
            ValueError: two methods return instance weights for the source rows.
        """
        logits = outputs.logits
        result = _MethodLosses(zero=logits.sum() * 0.0)
        has_both = bool((domain == self.target_domain).any()) and bool((domain != self.target_domain).any())
        gathered: list[torch.Tensor] = []
        with self.method_rng.active(logits.device):
            for name, method in self.methods.items():
                if not has_both:
                    result.zero = result.zero + sum(p.sum() * 0.0 for p in method.parameters())
                    continue
                context = contexts.get(name, {})
                if method.needs_hidden_states:
                    context = {**context, "hidden_states": outputs.hidden_states[-1]}
                method_features = features
                if self.alignment_balancing == "gradient" and not self._is_scheduled(name):
                    result.reversal_scales[name] = GradientScale()
                    method_features = result.reversal_scales[name](features)
                rows = self._method_rows(method, features, method_features, domain, logits, gathered)
                out = method(*rows, **context)
                result.losses[name] = out.loss
                result.components[f"loss_{name}"] = out.loss.detach()
                result.components.update({f"{name}_{k}": v.detach() for k, v in out.metrics.items()})
                if out.source_weights is not None:
                    if result.source_weights is not None:
                        raise ValueError("two methods of this run weight the source rows; combine at most one "
                                         "of them")
                    result.source_weights = out.source_weights.detach()
        return result

    @staticmethod
    def _method_rows(method, features: torch.Tensor, method_features: torch.Tensor, domain: torch.Tensor,
                     logits: torch.Tensor, gathered: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """``(features, domain, logits)`` a method reads: this process's rows, or under DDP, for a batch statistic
        (MMD, CORAL, ...), every process's rows with gradients flowing back (:mod:`hfadapt.utils.distributed`).

        ``gathered`` caches the gathered ``(features, domain, logits)`` across the methods of one batch;
        ``method_features`` are ``features`` or a gradient-scaled view of them, gathered on their own.
        """
        if not (method.batch_statistic and world_size() > 1):
            return method_features, domain, logits
        if not gathered:
            gathered.extend((gather_rows(features), gather_rows(domain), gather_rows(logits)))
        return tuple(gathered) if method_features is features else (gather_rows(method_features), *gathered[1:])

    def _weighted_alignment(self, methods: _MethodLosses, task_loss: torch.Tensor | None, features: torch.Tensor,
                            components: dict[str, torch.Tensor]) -> torch.Tensor:
        """``sum_m w_m L_m`` (a scalar), each ``w_m`` the method's :meth:`effective_weight`, balanced against the task
        loss's gradient on ``features (N, F)`` with ``alignment_balancing="gradient"``
        (:mod:`hfadapt.modeling.balancing`).

        Adds ``<name>_weight`` (and ``<name>_balance`` when balanced) to ``components``.
        """
        alignment = methods.zero
        task_norm = None
        if methods.losses and task_loss is not None and self.alignment_balancing == "gradient":
            task_norm = feature_gradient_norm(task_loss, features)
        for name, method_loss in methods.losses.items():
            weight = torch.tensor(self.effective_weight(name), device=method_loss.device)
            balanced = self._is_scheduled(name) and self.methods[name].feature_scale_dependent
            ratio = gradient_ratio(task_norm, method_loss, features) if balanced else None
            if name in methods.reversal_scales:
                factor = reversal_factor(task_norm, method_loss, features, self.methods[name].grl_coefficient)
                if factor is not None:
                    methods.reversal_scales[name].factor = factor
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
        return alignment

    def _add_penalties(self, loss: torch.Tensor, outputs, components: dict[str, torch.Tensor]) -> torch.Tensor:
        """``loss`` plus the objective's penalties on ``outputs`` (a multi-task model's soft sharing), each logged
        as ``loss_<name>`` in ``components``."""
        for name, penalty in self.objective.penalties(outputs).items():
            loss = loss + penalty
            components[f"loss_{name}"] = penalty.detach()
        return loss


@dataclass
class _MethodLosses:
    """What the alignment methods gave on one training batch, before weighting.

    Attributes:
        zero: a zero scalar holding the logits (and, on a one-domain batch, every head's parameters) in the graph;
            the weighted losses are added to it.
        losses: the scalar loss of each method that ran, by name.
        components: detached scalars to log: ``loss_<name>``, ``<name>_<metric>``.
        reversal_scales: with gradient balancing, the gradient scale each adversarial method reads through.
        source_weights: ``(N_s,)`` instance weights of the source rows, if a method gave them.
    """

    zero: torch.Tensor
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    components: dict[str, torch.Tensor] = field(default_factory=dict)
    reversal_scales: dict[str, GradientScale] = field(default_factory=dict)
    source_weights: torch.Tensor | None = None
