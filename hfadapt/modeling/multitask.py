"""Multi-task learning: several classification heads over one shared backbone (hard parameter sharing).

Caruana, "Multitask Learning", Machine Learning 1997; the loss is ``L = sum_i lambda_i L_i`` over tasks ``i``
(e.g. polarity and star rating of Amazon reviews). :class:`MultiTaskModel` is a ``PreTrainedModel`` registered
with ``AutoConfig`` / ``AutoModel``: after ``import hfadapt``, ``AutoModel.from_pretrained(path)`` loads one.

The first task is the *main* task: its logits are ``outputs.logits`` and it reads the usual ``labels`` column;
every other task reads the column named after it (``rating``). All heads read the same pooled representation,
the input of the ``classifier`` module, which is also what hfadapt's alignment methods compare across domains.

Soft sharing (optional): the tasks other than the main one can get their own copy of chosen backbone parameters
(``soft_sharing_modules``, name prefixes such as ``encoder.layer.5``), tied to the main task's by an L2 penalty
``soft_sharing_weight * sum_t sum_p ||theta_p^(t) - theta_p||^2`` (Duong et al., "Low Resource Dependency Parsing:
Cross-lingual Parameter Sharing in a Neural Network Parser", ACL 2015). Each soft-shared task then runs the backbone
once more with its copies in place (``torch.func.functional_call``), so it costs one backbone forward per task.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from .features import mean_pooled
from .objective import CrossEntropy, TaskObjective, register_objective


class MultiTaskConfig(PretrainedConfig):
    """Configuration of :class:`MultiTaskModel`.

    Args:
        backbone_config: the shared encoder's config (a ``PretrainedConfig`` or its ``to_dict()``, with
            ``model_type``), e.g. a BERT config.
        tasks: ``{task_name: num_labels}`` in order; the first is the main task. Names must be identifiers
            other than ``labels``.
        task_order: the task names in order (written to ``config.json``, whose keys are sorted, so a reloaded
            model keeps its main task); default: the order of ``tasks``.
        task_weights: ``{task_name: lambda_i}``; missing tasks weigh 1.
        classifier_dropout: dropout on the pooled representation before the heads.
        soft_sharing_modules: backbone parameter-name prefixes (``["encoder.layer.5"]``) of which every task but
            the main one gets its own copy (soft parameter sharing); default: none (hard sharing only).
        soft_sharing_weight: the L2 coefficient tying each copy to the main task's parameters.

    Raises:
        ValueError: no task, a task with fewer than 2 labels, a bad name, a negative weight or a weight for an
            unknown task, a negative ``soft_sharing_weight``.
    """

    model_type = "hfadapt-multitask"
    sub_configs = {"backbone_config": AutoConfig}

    def __init__(self, backbone_config=None, tasks=None, task_weights=None, classifier_dropout: float = 0.1,
                 task_order=None, soft_sharing_modules=None, soft_sharing_weight: float = 0.0, **kwargs):
        if isinstance(backbone_config, dict):
            backbone_config = AutoConfig.for_model(**backbone_config)
        self.backbone_config = backbone_config
        tasks = dict(tasks or {})
        if task_order is not None and sorted(task_order) == sorted(tasks):
            tasks = {name: tasks[name] for name in task_order}  # config.json sorts keys: the order is kept here
        self.tasks = tasks
        self.task_order = list(tasks)
        self.task_weights = {name: float((task_weights or {}).get(name, 1.0)) for name in self.tasks}
        self.classifier_dropout = classifier_dropout
        self.soft_sharing_modules = list(soft_sharing_modules or [])
        self.soft_sharing_weight = float(soft_sharing_weight)
        if self.soft_sharing_weight < 0:
            raise ValueError(f"soft_sharing_weight must be >= 0, got {soft_sharing_weight}")
        bad = [n for n, k in self.tasks.items() if not str(n).isidentifier() or n == "labels" or int(k) < 2]
        if bad:
            raise ValueError(f"tasks must map identifier names (not 'labels') to num_labels >= 2; bad: {bad}")
        unknown = sorted(set(task_weights or {}) - set(self.tasks))
        if unknown or any(w < 0 for w in self.task_weights.values()):
            raise ValueError(f"task_weights must be >= 0 and name known tasks {list(self.tasks)}; got {task_weights}")
        main = next(iter(self.tasks), None)
        kwargs.setdefault("num_labels", self.tasks[main] if main else 2)
        attention = getattr(backbone_config, "_attn_implementation", None)
        super().__init__(**kwargs)
        if attention is not None and kwargs.get("attn_implementation") is None:
            # PretrainedConfig.__init__ sets every sub-config's attention to None, which BERT reads as "eager
            # without a padding mask"; keep the backbone's own (SDPA for a loaded BERT)
            backbone_config._attn_implementation = attention

    @property
    def main_task(self) -> str:
        """The first task's name."""
        if not self.tasks:
            raise ValueError("MultiTaskConfig has no task")
        return next(iter(self.tasks))

    @property
    def extra_tasks(self) -> list[str]:
        """Every task but the main one."""
        return list(self.tasks)[1:]


@dataclass
class MultiTaskOutput(ModelOutput):
    """Output of :class:`MultiTaskModel`.

    Attributes:
        loss: ``sum_i lambda_i CE_i`` over the tasks with labels given (rows labelled -100 left out).
        logits: ``(N, C_main)`` of the main task.
        task_logits: ``{task: (N, C_task)}`` for every task.
        task_losses: ``{task: CE_task}`` for the tasks with labels given.
        soft_sharing_penalty: ``soft_sharing_weight * sum ||theta^(t) - theta||^2`` (in ``loss`` when labels are
            given); ``None`` without soft sharing.
        hidden_states: the backbone's hidden states when asked.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    task_logits: dict[str, torch.Tensor] | None = None
    task_losses: dict[str, torch.Tensor] | None = None
    soft_sharing_penalty: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


class MultiTaskHeads(nn.Module):
    """One linear head per task over the shared pooled representation: ``(N, H) -> {task: (N, C_task)}``."""

    def __init__(self, hidden_size: int, tasks: dict[str, int], dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({name: nn.Linear(hidden_size, n) for name, n in tasks.items()})

    def forward(self, pooled: torch.Tensor,
                task_pooled: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """``pooled (N, H)``: the shared representation; ``task_pooled``: ``{task: (N, H)}`` for tasks with their
        own (soft sharing). Returns ``{task: (N, C_task)}``."""
        task_pooled = task_pooled or {}
        return {name: head(self.dropout(task_pooled.get(name, pooled))) for name, head in self.heads.items()}


def _pool(outputs, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The backbone's pooled output if it has one (BERT's pooler), else the mask-aware mean of its last state."""
    pooled = getattr(outputs, "pooler_output", None)
    if pooled is not None:
        return pooled
    return mean_pooled(outputs.last_hidden_state, attention_mask)


class MultiTaskModel(PreTrainedModel):
    """Shared encoder + one classification head per task (see the module docstring).

    Inputs: the backbone's (``input_ids (N, L)``, ``attention_mask (N, L)``, ...), optional ``labels (N,)`` for
    the main task and ``<task> (N,)`` for each other task (-100 marks a row without that label).

    >>> model = MultiTaskModel.from_backbone("path/to/bert", {"sentiment": 2, "rating": 4})  # doctest: +SKIP
    >>> model.save_pretrained("out"); AutoModel.from_pretrained("out")  # after `import hfadapt`  # doctest: +SKIP
    """

    config_class = MultiTaskConfig
    base_model_prefix = "backbone"
    supports_gradient_checkpointing = True

    def __init__(self, config: MultiTaskConfig, backbone: PreTrainedModel | None = None):
        super().__init__(config)
        if not config.tasks:
            raise ValueError("MultiTaskModel needs at least one task in config.tasks")
        self.backbone = backbone if backbone is not None else AutoModel.from_config(config.backbone_config)
        hidden = config.backbone_config.hidden_size
        self.classifier = MultiTaskHeads(hidden, config.tasks, config.classifier_dropout)
        self.soft_shared = self._task_copies(config)
        self.post_init()

    def _task_copies(self, config: MultiTaskConfig) -> nn.ModuleDict:
        """``{task: ParameterDict}`` of each extra task's copies of the soft-shared backbone parameters (keys: the
        parameter names with ``.`` as ``__``), initialised from the backbone's current values."""
        params = dict(self.backbone.named_parameters())

        def under(name: str, prefix: str) -> bool:
            return name == prefix or name.startswith(prefix + ".")

        prefixes = config.soft_sharing_modules
        names = [n for n in params if any(under(n, p) for p in prefixes)]
        unmatched = [p for p in prefixes if not any(under(n, p) for n in names)]
        if unmatched:
            layers = sorted({n.rsplit(".", 1)[0] for n in params})
            raise ValueError(f"soft_sharing_modules {unmatched} name no backbone parameter; modules with "
                             f"parameters: {layers[:8]} ...")
        return nn.ModuleDict({
            task: nn.ParameterDict({n.replace(".", "__"): nn.Parameter(params[n].detach().clone()) for n in names})
            for task in (config.extra_tasks if names else [])
        })

    def task_parameters(self, task: str) -> dict[str, nn.Parameter]:
        """``task``'s soft-shared copies keyed by the backbone parameter names they stand in for."""
        return {key.replace("__", "."): copy for key, copy in self.soft_shared[task].items()}

    def soft_sharing_penalty(self) -> torch.Tensor | None:
        """``soft_sharing_weight * sum_t sum_p ||theta_p^(t) - theta_p||^2`` (a scalar); ``None`` without soft
        sharing (Duong et al., ACL 2015)."""
        if not len(self.soft_shared):
            return None
        params = dict(self.backbone.named_parameters())
        total = sum(((copy - params[name]) ** 2).sum()
                    for task in self.soft_shared for name, copy in self.task_parameters(task).items())
        return self.config.soft_sharing_weight * total

    def _init_weights(self, module):
        if isinstance(module, MultiTaskHeads):
            std = getattr(self.config.backbone_config, "initializer_range", 0.02)
            for head in module.heads.values():
                nn.init.normal_(head.weight, std=std)
                nn.init.zeros_(head.bias)

    @classmethod
    def from_backbone(cls, name_or_path: str, tasks: dict[str, int], task_weights: dict[str, float] | None = None,
                      soft_sharing_modules: list[str] | None = None, soft_sharing_weight: float = 0.0,
                      **kwargs) -> MultiTaskModel:
        """A multi-task model over a pretrained encoder (``AutoModel.from_pretrained(name_or_path, **kwargs)``), new
        heads; soft-shared copies (see :class:`MultiTaskConfig`) start from the pretrained values."""
        backbone = AutoModel.from_pretrained(name_or_path, **kwargs)
        config = MultiTaskConfig(backbone_config=backbone.config, tasks=tasks, task_weights=task_weights,
                                 soft_sharing_modules=soft_sharing_modules, soft_sharing_weight=soft_sharing_weight)
        return cls(config, backbone=backbone)

    def get_input_embeddings(self) -> nn.Module:
        return self.backbone.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.backbone.set_input_embeddings(value)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> MultiTaskOutput:
        task_labels = {name: kwargs.pop(name) for name in self.config.extra_tasks if name in kwargs}
        if labels is not None:
            task_labels[self.config.main_task] = labels
        backbone_inputs = {"input_ids": input_ids, "attention_mask": attention_mask, **kwargs}
        if token_type_ids is not None:
            backbone_inputs["token_type_ids"] = token_type_ids
        outputs = self.backbone(**backbone_inputs, output_hidden_states=output_hidden_states)
        task_pooled = {  # each soft-shared task: the backbone again, with its own copies in place
            task: _pool(torch.func.functional_call(self.backbone, self.task_parameters(task), (), backbone_inputs,
                                                   strict=False), attention_mask)
            for task in self.soft_shared
        }
        task_logits = self.classifier(_pool(outputs, attention_mask), task_pooled)
        losses = {}
        for name, y in task_labels.items():
            keep = y != -100
            if keep.any():
                losses[name] = F.cross_entropy(task_logits[name][keep].float(), y[keep])
        loss = sum(self.config.task_weights[n] * v for n, v in losses.items()) if losses else None
        penalty = self.soft_sharing_penalty()
        if loss is not None and penalty is not None:
            loss = loss + penalty
        return MultiTaskOutput(
            loss=loss,
            logits=task_logits[self.config.main_task],
            task_logits=task_logits,
            task_losses=losses or None,
            soft_sharing_penalty=penalty,
            hidden_states=getattr(outputs, "hidden_states", None),
        )


class MultiTaskObjective(TaskObjective):
    """The adaptation objective of a :class:`MultiTaskModel`: ``L_task = sum_i lambda_i L_i`` over its tasks.

    Each ``L_i`` is the adaptation model's cross-entropy over the labelled source rows of task ``i`` (the main task
    reads ``labels``, every other task the column named after it); each is logged as ``loss_task_<task>`` and, with
    several source domains, per domain as ``loss_task_<task>_<domain>``. The soft-sharing penalty of the model's
    output is added to the training loss and logged as ``loss_soft_sharing``. A model with one task is trained as a
    single-task one.

    Args:
        tasks: ``{task: num_labels}`` in order, the main task first.
        task_weights: ``{task: lambda_i}``; missing tasks weigh 1.
    """

    def __init__(self, tasks: dict[str, int], task_weights: dict[str, float] | None = None):
        self.tasks = dict(tasks)
        self.extra_tasks = list(self.tasks)[1:]
        self.main_task = next(iter(self.tasks)) if self.extra_tasks else None
        self.task_weights = dict(task_weights or {})

    @classmethod
    def from_config(cls, config: MultiTaskConfig) -> MultiTaskObjective:
        """The objective of a model with this config."""
        return cls(config.tasks, config.task_weights)

    @property
    def label_columns(self) -> dict[str, int]:
        """``{task: num_labels}`` of every task but the main one: the columns their labels are read from."""
        return {t: self.tasks[t] for t in self.extra_tasks}

    def split_labels(self, inputs: dict) -> tuple[dict, dict[str, torch.Tensor]]:
        """Pop the extra tasks' label columns, ``{task: (N,) long}``, from the model inputs (changed in place)."""
        return inputs, {t: inputs.pop(t) for t in self.extra_tasks if t in inputs}

    def task_loss(self, outputs, labels: torch.Tensor, task_labels: dict[str, torch.Tensor],
                  cross_entropy: CrossEntropy) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``sum_i lambda_i L_i`` over the main task and the extra tasks whose labels the batch carries.

        Args:
            outputs: a :class:`MultiTaskOutput` (``logits (N, C_main)``, ``task_logits {task: (N, C_task)}``).
            labels: ``(N,)`` long labels of the main task, -100 on unlabelled rows.
            task_labels: ``{task: (N,) long}`` from :meth:`split_labels`.
            cross_entropy: the adaptation model's task loss (:data:`hfadapt.modeling.objective.CrossEntropy`).
        """
        if not self.extra_tasks:
            return cross_entropy(outputs.logits, labels)
        pairs = [(self.main_task, outputs.logits, labels)]
        pairs += [(t, outputs.task_logits[t], task_labels[t]) for t in self.extra_tasks if t in task_labels]
        total, components = None, {}
        for name, logits, y in pairs:
            if y is None:
                continue
            loss, parts = cross_entropy(logits, y, task=name)
            weighted = self.task_weights.get(name, 1.0) * loss
            total = weighted if total is None else total + weighted
            components[f"loss_task_{name}"] = loss.detach()
            components.update(parts)
        return total, components

    def penalties(self, outputs) -> dict[str, torch.Tensor]:
        """``{"soft_sharing": penalty}`` when the model soft-shares parameters
        (:attr:`MultiTaskOutput.soft_sharing_penalty`), else nothing."""
        penalty = outputs.soft_sharing_penalty
        return {} if penalty is None else {"soft_sharing": penalty}


# After `import hfadapt`, AutoConfig/AutoModel load a saved multi-task model without remote code.
AutoConfig.register(MultiTaskConfig.model_type, MultiTaskConfig, exist_ok=True)
AutoModel.register(MultiTaskConfig, MultiTaskModel, exist_ok=True)
# Saving also writes this file (and features.py, its one relative import) with an `auto_map`, so a Hub copy loads
# with `trust_remote_code=True` where hfadapt is not installed.
MultiTaskConfig.register_for_auto_class()
MultiTaskModel.register_for_auto_class("AutoModel")
# Adapting a multi-task model trains every task (AdaptModel asks hfadapt.modeling.objective for the model's objective).
register_objective(MultiTaskConfig.model_type, MultiTaskObjective.from_config)
