"""What :class:`~hfadapt.AdaptTrainer` refuses before training: wrong argument types, a model it cannot adapt,
datasets whose columns, labels or stored values would fail (or silently mislead) a run."""

from __future__ import annotations

import datasets
from torch import nn
from transformers import PreTrainedModel

from ...data.mixing import check_columns, check_label_sets, check_task_columns
from ...modeling.heads import unwrap_peft
from ..config import AdaptConfig
from ..preflight import check_finite_inputs, check_task_head, check_token_ids


def check_model(args, model: nn.Module) -> int:
    """Check the trainer's ``args`` and ``model``; return the model's ``num_labels``.

    Raises:
        TypeError: ``args`` is not an :class:`~hfadapt.AdaptConfig`, or ``model`` not a ``PreTrainedModel`` (or a
            PEFT model of one).
        ValueError: source and target rows do not both fit in a batch, a task head other than sequence or image
            classification, or a regression model (``num_labels < 2``).
    """
    if not isinstance(args, AdaptConfig):
        raise TypeError(f"args must be an hfadapt.AdaptConfig, got {type(args).__name__}")
    args.source_per_batch(args.per_device_train_batch_size)  # both domains fit in a batch
    if not isinstance(unwrap_peft(model), PreTrainedModel):
        raise TypeError("model must be a transformers PreTrainedModel (or a PEFT model of one), "
                        f"got {type(model).__name__}")
    check_task_head(model)
    num_labels = unwrap_peft(model).config.num_labels
    if num_labels < 2:
        raise ValueError(f"hfadapt adapts classifiers; the model has num_labels={num_labels} (regression)")
    return num_labels


def check_datasets(args, num_labels: int, label_columns: dict[str, int], sources: dict[str, datasets.Dataset],
                   target: datasets.Dataset, evals: dict[str, datasets.Dataset], model_inputs: list[str]) -> None:
    """Every check of the datasets' columns and label sets that must fail before training.

    Args:
        num_labels: the model's (main task's) number of labels.
        label_columns: ``{column: num_labels}`` of the objective's label columns beyond ``label``/``labels`` (a
            multi-task model's extra tasks), which every source domain must carry.

    Raises:
        ValueError: a missing model-input or label column, source labels outside ``num_labels``, eval or source
            label sets that differ from the first source's, bad extra-task labels, or ``source_domain_weights`` of
            another length than the source domains.
    """
    for name, ds in sources.items():
        check_columns(ds, f"train_dataset (source {name!r})" if len(sources) > 1 else "train_dataset (source)",
                      model_inputs, need_labels=True)
    check_columns(target, "target_dataset", model_inputs, need_labels=False)
    for name, ds in evals.items():
        check_columns(ds, f"eval dataset {name!r}", model_inputs, need_labels=False)
    for ds in sources.values():
        check_label_sets(ds, num_labels, evals)
    first, *others = sources.items()
    check_label_sets(first[1], num_labels, {f"source {n!r}": ds for n, ds in others})
    for name, ds in sources.items():
        check_task_columns(ds, f"train_dataset (source {name!r})", label_columns)
    if args.source_weighting == "fixed" and len(args.source_domain_weights) != len(sources):
        raise ValueError(f"source_domain_weights has {len(args.source_domain_weights)} values for "
                         f"{len(sources)} source domains {list(sources)}")


def check_stored_inputs(model: nn.Module, sources: dict[str, datasets.Dataset], target: datasets.Dataset,
                        evals: dict[str, datasets.Dataset], model_inputs: list[str]) -> None:
    """Token ids within the vocabulary and finite float inputs, on every stored row of every set.

    Raises:
        ValueError: naming the set and the first bad row (:mod:`hfadapt.trainer.preflight`).
    """
    named = {**{f"train_dataset (source {n!r})": ds for n, ds in sources.items()}, "target_dataset": target,
             **{f"eval dataset {n!r}": ds for n, ds in evals.items()}}
    for name, ds in named.items():
        check_token_ids(ds, name, model)
        check_finite_inputs(ds, name, model_inputs)
