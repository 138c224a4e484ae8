"""Checks of the model and the datasets that ``AdaptTrainer`` runs before the first training step.

Each turns what would otherwise be a raw ``IndexError``, a collator error or a shape error at step 1 (or a NaN loss
beside a plausible accuracy at the first evaluation) into a ``ValueError`` naming the dataset, the column and the row:

- :func:`check_task_head`: only sequence and image classifiers (one label per example) are adapted;
- :func:`check_token_ids`: token ids within the model's vocabulary (and token types within its type vocabulary),
  on every stored row;
- :func:`check_finite_inputs`: no NaN or infinite value in a stored float input (``pixel_values``, ...);
- :func:`probe_rows`: a few rows of a set (the first ones and the longest) through the collator and the model,
  with logits of shape ``(rows, num_labels)``; :func:`check_batchable` collates a source row with a target row.

Two checks belong to a whole experiment (:func:`hfadapt.evaluation.experiment.compare_with_source_only` runs them
before the
source-only baseline trains): :func:`check_evaluation_sizes`, the rows the proxy A-distance and the label-free
validators will need, and :func:`check_hub_access`, the Hub token and repository when ``push_to_hub`` is set.

Sets whose inputs a lazy transform makes (images through an image processor) are read only by the probes: their
stored columns are not the model's inputs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch import nn

from ..data.transforms import arrow_column, transform_of
from ..modeling.heads import unwrap_peft
from ..modeling.inference import dataset_predictions
from ..selection import min_rows

OTHER_TASK_HEADS = {
    "ForTokenClassification": "token classification, one label per token",
    "ForQuestionAnswering": "question answering, an answer span per example",
    "ForMultipleChoice": "multiple choice",
    "ForMaskedLM": "masked language modelling",
    "ForCausalLM": "causal language modelling",
    "ForConditionalGeneration": "sequence-to-sequence generation",
    "ForPreTraining": "pretraining",
    "ForNextSentencePrediction": "next-sentence prediction",
    "ForSemanticSegmentation": "semantic segmentation, one label per pixel",
    "ForObjectDetection": "object detection",
    "ForMaskedImageModeling": "masked image modelling",
    "ForAudioFrameClassification": "audio frame classification, one label per frame",
    "ForCTC": "speech recognition (CTC)",
    "ForDepthEstimation": "depth estimation",
}
"""Model class suffixes of transformers task heads hfadapt does not adapt, with the task each one solves."""


def _reason(err: BaseException) -> str:
    """``"<type>: <message>"`` of an error, without a final full stop (the caller's sentence follows)."""
    return f"{type(err).__name__}: {str(err).rstrip('.')}"


def check_task_head(model: nn.Module) -> None:
    """Refuse a model whose task head is not a sequence or image classifier.

    Raises:
        ValueError: for a model class ending in one of :data:`OTHER_TASK_HEADS` (``BertForTokenClassification``,
            ...), naming its task.
    """
    name = type(unwrap_peft(model)).__name__
    for suffix, task in OTHER_TASK_HEADS.items():
        if name.endswith(suffix):
            raise ValueError(
                f"{name} is a model for {task}; hfadapt adapts classifiers of whole examples (one label per "
                "sequence or image), whose task loss and alignment features it knows. Load the backbone with "
                "AutoModelForSequenceClassification or AutoModelForImageClassification."
            )


def _leaves_with_rows(column: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The innermost values of a (nested) list column and, for each, the row it belongs to."""
    values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    rows = np.arange(len(values))
    while pa.types.is_list(values.type) or pa.types.is_large_list(values.type) or pa.types.is_fixed_size_list(
            values.type):
        parents = pc.list_parent_indices(values).to_numpy(zero_copy_only=False)
        rows = rows[parents]
        values = pc.list_flatten(values)
    return values, rows


def _stored_column(ds: datasets.Dataset, column: str) -> pa.ChunkedArray | None:
    """``ds``'s stored column (the rows ``ds`` selects), or ``None`` if a lazy transform makes the inputs."""
    if transform_of(ds) is not None or column not in ds.column_names or len(ds) == 0:
        return None
    return arrow_column(ds, column)


def _id_limit(model: nn.Module, column: str) -> int | None:
    """The number of ids ``column`` may take: rows of the input embedding for ``input_ids``, ``type_vocab_size``
    for ``token_type_ids``; ``None`` where the model does not say."""
    if column == "token_type_ids":
        return getattr(model.config, "type_vocab_size", None)
    try:
        return model.get_input_embeddings().num_embeddings
    except (AttributeError, NotImplementedError):  # a model without token embeddings (an image model)
        return getattr(model.config, "vocab_size", None)


def check_token_ids(ds: datasets.Dataset, name: str, model: nn.Module) -> None:
    """Check that ``ds``'s ``input_ids`` are in ``[0, vocabulary size)`` (the rows of the model's input embedding)
    and its ``token_type_ids`` in ``[0, type_vocab_size)``, on every row.

    Raises:
        ValueError: naming the set, the column, the first offending row and id, and the allowed range.
    """
    base = unwrap_peft(model)
    for column in ("input_ids", "token_type_ids"):
        stored = _stored_column(ds, column)
        limit = _id_limit(base, column) if stored is not None else None
        if not limit:
            continue
        values, rows = _leaves_with_rows(stored)
        if len(values) == 0 or not pa.types.is_integer(values.type):
            continue
        ids = values.to_numpy(zero_copy_only=False)
        bad = np.flatnonzero((ids < 0) | (ids >= limit))
        if len(bad):
            first = bad[0]
            raise ValueError(
                f"{name}: {column} of row {int(rows[first])} holds {int(ids[first])}, outside the model's range "
                f"[0, {limit}) ({len(bad)} such values in the set). Tokenise it with the model's own tokenizer "
                "(a different vocabulary gives ids the embedding does not have)."
            )


def check_finite_inputs(ds: datasets.Dataset, name: str, model_inputs: Sequence[str]) -> None:
    """Check that no stored float model input of ``ds`` (``pixel_values``, ``inputs_embeds``, ...) holds NaN or an
    infinite value.

    Raises:
        ValueError: naming the set, the column and the first offending row.
    """
    for column in model_inputs:
        stored = _stored_column(ds, column)
        if stored is None:
            continue
        values, rows = _leaves_with_rows(stored)
        if len(values) == 0 or not pa.types.is_floating(values.type):
            continue
        array = values.to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(~np.isfinite(array))
        if len(bad):
            raise ValueError(f"{name}: {column} of row {int(rows[bad[0]])} holds {array[bad[0]]} ({len(bad)} "
                             "non-finite values in the set); a model cannot be trained or scored on it")


def probe_indices(ds: datasets.Dataset, n_first: int = 2) -> list[int]:
    """The rows a probe runs: the first ``n_first`` and, for a stored token set, the longest."""
    indices = list(range(min(n_first, len(ds))))
    stored = _stored_column(ds, "input_ids")
    if stored is not None:
        lengths = pc.list_value_length(stored.combine_chunks()).to_numpy(zero_copy_only=False)
        longest = int(np.argmax(lengths))
        if longest not in indices:
            indices.append(longest)
    return indices


def probe_rows(adapt_model, ds: datasets.Dataset, name: str, collator, model_inputs: Sequence[str],
               num_labels: int):
    """Run :func:`probe_indices` rows of ``ds`` through ``collator`` and the model (eval mode, no gradient).

    Returns:
        The ``(rows, F)`` features of those rows.

    Raises:
        ValueError: if the rows cannot be collated or run (naming the set and the input shapes), or the logits
            are not finite or not ``(rows, num_labels)`` (a model that labels tokens or pixels, not examples).
    """
    rows = ds.select(probe_indices(ds))
    try:
        features, logits = dataset_predictions(adapt_model, rows, collator, model_inputs, max_rows=len(rows))
    except (RuntimeError, ValueError, TypeError, IndexError, KeyError) as err:
        try:
            shapes = {k: tuple(v.shape) for k, v in collator([{k: v for k, v in rows[0].items() if k in model_inputs}])
                      .items() if hasattr(v, "shape")}
        except Exception:  # the collator itself fails: the message of the first error says why
            shapes = "not collatable"
        raise ValueError(
            f"the model cannot run on rows of {name} (inputs {shapes}): {_reason(err)}. Check that the "
            "data was processed for this model: tokenised with its tokenizer, or images resized to the model's "
            "image_size with its number of channels (hfadapt.data.image_transform does both)."
        ) from err
    if not torch.isfinite(logits).all():
        raise ValueError(f"the model gives non-finite logits on rows of {name} (rows {probe_indices(ds)}): NaN or "
                         "infinite inputs, or weights that already hold NaN")
    if logits.ndim != 2 or logits.shape[1] != num_labels:
        raise ValueError(
            f"the model gives logits of shape {tuple(logits.shape)} on {len(rows)} rows of {name}, not "
            f"({len(rows)}, {num_labels}): hfadapt adapts classifiers of whole examples (one label per sequence or "
            "image), not models that label tokens or pixels"
        )
    return features


def check_batchable(source: datasets.Dataset, target: datasets.Dataset, collator,
                    model_inputs: Sequence[str]) -> None:
    """Collate a source row with a target row, as every training batch does.

    Raises:
        ValueError: if they cannot form one batch (e.g. fixed-length rows of two lengths without a padding
            collator), with the collator's message.
    """
    rows = [{k: v for k, v in ds[0].items() if k in model_inputs} for ds in (source, target)]
    try:
        collator(rows)
    except (RuntimeError, ValueError, TypeError, KeyError) as err:
        raise ValueError(
            f"a source row and a target row cannot be collated into one training batch: {_reason(err)}. "
            "Process both domains the same way (same tokenizer and max_length, same image size), or pass "
            "processing_class=tokenizer so that rows are padded per batch."
        ) from err


class HubAccessError(ValueError):
    """``push_to_hub`` is set but the Hub refuses the token, cannot be reached, or will not create the repository."""


def check_evaluation_sizes(config, splits, pad_rows: int = 0) -> None:
    """Check that the evaluation sets hold the rows the proxy A-distance (``pad_rows`` of source validation and of
    target test, at least :data:`~hfadapt.evaluation.pad.PAD_MIN_ROWS` each) and each of
    ``config.label_free_validators`` (source validation and target train, :func:`hfadapt.selection.min_rows`) need.

    Args:
        config: an :class:`~hfadapt.AdaptConfig`; splits: the :class:`~hfadapt.data.TransferSplits` of the run.

    Raises:
        ValueError: listing every shortfall, with the set, its rows and the need.
    """
    from ..evaluation.pad import PAD_MIN_ROWS  # here: `import hfadapt` must not pay for scikit-learn's import

    problems = []
    if pad_rows:
        # without target labels the proxy A-distance reads the unlabelled target rows
        target = "target_test" if getattr(splits, "target_test", None) is not None else "target_train"
        for name in ("source_val", target):
            rows = min(pad_rows, len(getattr(splits, name)))
            if rows < PAD_MIN_ROWS:
                problems.append(f"the proxy A-distance needs at least {PAD_MIN_ROWS} rows of {name}, which has "
                                f"{len(getattr(splits, name))} (pad_rows={pad_rows})")
    cap = config.label_free_max_rows
    for name in config.label_free_validators:
        need_source, need_target = min_rows(name)
        have_source, have_target = min(cap, len(splits.source_val)), min(cap, len(splits.target_train))
        if have_source < need_source or have_target < need_target:
            problems.append(f"validator {name!r} needs at least {need_source} source_val and {need_target} "
                            f"target_train rows, got {have_source} and {have_target}")
    if problems:
        raise ValueError("; ".join(problems) + ". Nothing was trained: give the sets more rows (max_eval_samples), "
                         "or set pad_rows=0 / leave out the validator.")


def check_hub_access(config, output_dir: str | None = None) -> str | None:
    """With ``config.push_to_hub``, check the token (``whoami``) and create the repository as ``Trainer`` will
    (``create_repo(exist_ok=True)`` through transformers' shared ``HfApi``), before anything trains. On processes
    other than the main one, and without ``push_to_hub``, nothing is checked.

    Args:
        config: the run's :class:`~hfadapt.AdaptConfig`.
        output_dir: the folder the pushing run saves to (default ``config.output_dir``); without a
            ``hub_model_id`` the repository is named after it, as ``Trainer.init_hf_repo`` names it.

    Returns:
        The repository id, or ``None`` when nothing was checked.

    Raises:
        HubAccessError: no token, a token the Hub refuses, no network (or ``HF_HUB_OFFLINE=1``), or a repository
            that cannot be created, with the Hub client's message.
    """
    from accelerate import PartialState
    from transformers.utils.hub import hf_api

    if not config.push_to_hub or not PartialState().is_main_process:
        return None
    repo = config.hub_model_id or Path(output_dir or config.output_dir).absolute().name
    api = hf_api()
    try:
        api.whoami(token=config.hub_token)
        url = api.create_repo(repo, token=config.hub_token, private=config.hub_private_repo, exist_ok=True)
    except Exception as err:  # the client raises many types (HTTP, offline, no token); each means "cannot push"
        raise HubAccessError(
            f"push_to_hub is set, but the Hub cannot take {repo!r}: {_reason(err)}. Nothing was trained. "
            "Log in (`hf auth login`) or pass hub_token with write access, check the network (HF_HUB_OFFLINE), "
            "or leave out push_to_hub."
        ) from err
    return getattr(url, "repo_id", repo)


class OutputDirInUseError(ValueError):
    """``output_dir`` holds a previous run's results and neither ``overwrite_output_dir`` nor resuming is set."""


def previous_results(output_dir: str | os.PathLike) -> list[str]:
    """What a finished run left in ``output_dir``: ``results.json`` and every saved model folder (the folder itself
    or a sub-folder holding a sha256 manifest), as names relative to it; checkpoints are not counted."""
    from .integrity import MANIFEST_NAME

    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = ["results.json"] if (root / "results.json").is_file() else []
    if (root / MANIFEST_NAME).is_file():
        found.append(".")
    found += sorted(f"{p.name}/" for p in root.iterdir()
                    if p.is_dir() and not p.name.startswith((".", "checkpoint-")) and (p / MANIFEST_NAME).is_file())
    return found


def check_output_dir(config) -> None:
    """Refuse, before anything is trained or written, an ``output_dir`` that holds a previous run's results
    (:func:`previous_results`), unless ``config.overwrite_output_dir`` is set or the run resumes
    (``resume_from_checkpoint``), as the HuggingFace example scripts did.

    Raises:
        OutputDirInUseError: naming the folder, what it holds and the three ways on.
    """
    resume = getattr(config, "resume_from_checkpoint", None)
    if getattr(config, "overwrite_output_dir", False) or (resume is not None and str(resume).lower() != "false"):
        return
    found = previous_results(config.output_dir)
    if found:
        raise OutputDirInUseError(
            f"output_dir {config.output_dir} holds a previous run's results ({', '.join(found)}); nothing was "
            "trained or written. Pass --overwrite_output_dir to replace them, --resume_from_checkpoint true to "
            "continue that run, or choose another --output_dir")
