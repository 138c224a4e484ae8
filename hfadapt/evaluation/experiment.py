"""Running a method beside the source-only baseline with the same seed and budget, and tabulating the result."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import datasets
import torch
from accelerate import PartialState
from transformers import PreTrainedModel, set_seed

from ..data.sampler import row_sample
from ..data.splits import TransferSplits
from ..data.transforms import raw
from ..methods import SOURCE_ONLY
from ..trainer.callbacks import MinStepsEarlyStoppingCallback
from ..trainer.checkpointing import last_checkpoint
from ..trainer.config import AdaptConfig
from ..trainer.integrity import atomic_replace, atomic_write_text
from ..trainer.model_card import TRAINING_FIELDS, public_value
from ..trainer.preflight import check_evaluation_sizes, check_hub_access, check_output_dir, previous_results
from ..trainer.pretraining import check_tapt_tokenizer
from ..trainer.trainer import AdaptTrainer
from ..utils.peft_utils import plain_state_dict
from . import baseline_convergence_warnings, negative_transfer_warnings, proxy_a_distance
from .metrics import classification_metrics
from .negative_transfer import TARGET_SUPERVISED, source_only_run
from .report import format_results_table, write_report
from .run_files import ANALYSIS_FILE, LOG_HISTORY_FILE, SOURCE_EVAL, TARGET_EVAL, run_label, run_name
from .side_by_side import ThreadsBackWhenDone, second_process, thread_split, why_not_side_by_side

logger = logging.getLogger(__name__)

NO_TARGET_LABEL_VALIDATORS = ("im", "entropy")
"""Label-free validators scored when the target has no labels (and ``label_free_validators`` names none): the two
that ranked checkpoints best among the label-free ones in the validator study (``benchmarks/README.md``)."""


def save_run_analysis(run_dir: str, log_history: list[dict], snapshots: dict,
                      probe: tuple[datasets.Dataset, datasets.Dataset], label_names: list[str]) -> None:
    """Write what ``hfadapt report`` draws: the log history (JSON) and, if features were taken, ``analysis.pt``
    with ``{"before"|"after": {"source", "target"}}`` features of the ``probe`` rows (source validation, target
    test) and their labels (target-test labels colour the class plot only; no loss or validator reads them).
    Each file is replaced at once: a run killed meanwhile leaves the old file or the new one."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(run_dir) / LOG_HISTORY_FILE, json.dumps(log_history, indent=1))
    if snapshots:
        stored = {name: raw(ds) for name, ds in zip(("source", "target"), probe, strict=True)}
        labels = {name: torch.tensor(list(ds["label"])) if "label" in ds.column_names else None
                  for name, ds in stored.items()}
        analysis = {"features": {when: {"source": s, "target": t} for when, (s, t) in snapshots.items()},
                    "labels": labels, "label_names": list(label_names)}
        atomic_replace(Path(run_dir) / ANALYSIS_FILE, lambda tmp: torch.save(analysis, tmp))


def source_val_curve(log_history: list[dict]) -> list[list[float]]:
    """``[[step, accuracy], ...]`` of the source-validation evaluations during training (empty without periodic
    evaluation): the curve that shows whether a run converged."""
    key = f"eval_{SOURCE_EVAL}_accuracy"
    curve = {}
    for entry in log_history:
        if key in entry and "step" in entry:
            curve.setdefault(entry["step"], entry[key])  # the final evaluation repeats the last step's
    return [[step, accuracy] for step, accuracy in curve.items()]


def checkpoint_to_resume(config: AdaptConfig) -> str | bool | None:
    """What a run continues from: ``config.resume_from_checkpoint`` if it is a folder; with ``"true"``, ``True``
    (``AdaptTrainer.train`` then picks the latest checkpoint of this run under ``config.output_dir``, by its
    fingerprint) once there is any ``checkpoint-<step>``, else ``None``: a fresh start, as a run that was killed
    before its first save starts again."""
    resume = config.resume_from_checkpoint
    if resume is None or str(resume).lower() == "false":
        return None
    if str(resume).lower() == "true":
        return True if last_checkpoint(config.output_dir) is not None else None
    return str(resume)


def train_and_evaluate(
    make_model: Callable[[], PreTrainedModel],
    config: AdaptConfig,
    splits: TransferSplits,
    processing_class=None,
    save: bool = True,
    card_details: dict | Callable[[], dict] | None = None,
    pad_rows: int = 0,
    initial_weights: dict | None = None,
    keep_weights: bool = False,
    callbacks: list | None = None,
) -> dict:
    """Train ``config.method`` from ``make_model()`` (after ``set_seed(config.seed)``; with ``initial_weights``, a
    state dict of the same architecture, loaded into it first; resuming from
    :func:`checkpoint_to_resume`) on ``splits``, evaluate it on
    source validation and target test, and save it to ``config.output_dir`` when ``save``, with a model card
    (``README.md``: ``card_details`` as in ``AdaptTrainer.card_details``, or a function returning them, called when the
    model is saved, plus this run's results); with
    ``config.push_to_hub``, saving also pushes model, processor and card to ``config.hub_model_id``, once after
    training (``hub_strategy="end"``: the checkpoints saved on the way are not uploaded). With
    ``pad_rows > 0``, the proxy A-distance between source-validation and target-test features (``pad_rows`` of
    each; the unlabelled target rows when there is no target test set) is measured before and after training.
    Without target labels (``splits.target_test`` is ``None``) the model is scored by the label-free validators
    of ``config.label_free_validators``, else :data:`NO_TARGET_LABEL_VALIDATORS`. ``callbacks`` are added to the
    trainer's.

    Returns:
        ``{"method", "source_val_accuracy", "source_val_rows", "target_accuracy", "target_macro_f1", "validators",
        "train_steps", "source_val_curve", "wall_time_s", "model_dir"}``, accuracies in ``[0, 1]`` (source validation
        scored on ``source_val_rows`` rows), wall time in seconds (training, evaluation and saving); ``target_accuracy``
        and ``target_macro_f1`` only with target labels, ``validators`` (``{name: score}``, higher is better) only when
        validators were scored; with ``keep_weights`` also ``"weights"``, the trained task model's state dict on the CPU
        (PEFT merged), which is not JSON. With ``config.eval_strategy`` set, the evaluations during training read source
        validation only (``source_val_curve``; with ``load_best_model_at_end`` the best of them is kept).

    Raises:
        ValueError: before training, if the evaluation sets are too small for the proxy A-distance or the
            label-free validators (:func:`~hfadapt.trainer.preflight.check_evaluation_sizes`), if the Hub cannot take
            the push (:class:`~hfadapt.trainer.preflight.HubAccessError`), or if ``AdaptTrainer`` refuses the data,
            the model or the checkpoint to resume from.
        RuntimeError: from ``load_state_dict``, if ``initial_weights`` do not fit ``make_model()``.
    """
    if not splits.has_target_labels and not config.label_free_validators:
        config = dataclasses.replace(config, label_free_validators=list(NO_TARGET_LABEL_VALIDATORS))
    if config.push_to_hub:  # one push, after training, with the card and its results: no checkpoint is uploaded
        config = dataclasses.replace(config, hub_strategy="end")
    check_evaluation_sizes(config, splits, pad_rows)
    if save:
        check_hub_access(config)
    set_seed(config.seed)
    final_evals = {SOURCE_EVAL: splits.source_val}
    if splits.has_target_labels:
        final_evals[TARGET_EVAL] = splits.target_test
    # Evaluations during training (early stopping, the best checkpoint) read source validation only: the target
    # test set is scored once, at the end, and never chooses anything.
    periodic = config.eval_strategy != "no"
    model = make_model()
    if initial_weights is not None:
        model.load_state_dict(initial_weights)
    trainer = AdaptTrainer(
        model,
        config,
        train_dataset=splits.source_train,
        target_dataset=splits.target_train,
        eval_dataset=final_evals,
        processing_class=processing_class,
        compute_metrics=classification_metrics,
        callbacks=callbacks,
    )
    final_evals = trainer.eval_dataset  # as the trainer prepared them (model inputs and labels only)
    if periodic:
        trainer.eval_dataset = {SOURCE_EVAL: final_evals[SOURCE_EVAL]}
    snapshots = {}
    # a seeded random sample of each side: the test files are sorted by label
    probe = None
    if pad_rows:
        target_rows = splits.target_test if splits.has_target_labels else splits.target_train
        probe = (row_sample(splits.source_val, pad_rows, config.seed), row_sample(target_rows, pad_rows, config.seed))
        snapshots["before"] = trainer.domain_features(*probe, pad_rows)
    start = time.perf_counter()
    train_output = trainer.train(resume_from_checkpoint=checkpoint_to_resume(config))
    trainer.remove_callback(MinStepsEarlyStoppingCallback)  # the final evaluation is no training signal
    metrics = trainer.evaluate(final_evals)
    if pad_rows:
        snapshots["after"] = trainer.domain_features(*probe, pad_rows)
    pad = {when: proxy_a_distance(*features, seed=config.seed) for when, features in snapshots.items()}
    scores = {"source_val_accuracy": metrics[f"eval_{SOURCE_EVAL}_accuracy"], "source_val_rows": len(splits.source_val)}
    if splits.has_target_labels:
        scores["target_accuracy"] = metrics[f"eval_{TARGET_EVAL}_accuracy"]
        scores["target_macro_f1"] = metrics[f"eval_{TARGET_EVAL}_macro_f1"]
    validators = {name: metrics[f"eval_{name}"] for name in config.label_free_validators if f"eval_{name}" in metrics}
    if validators:
        scores["validators"] = validators
    if save:
        details = card_details() if callable(card_details) else card_details
        trainer.card_details = {**(details or {}), "results": scores}
        trainer.save_model()  # and push_to_hub, which writes the card, when config.push_to_hub
        if not config.push_to_hub:
            trainer.create_model_card()
        if PartialState().is_main_process:
            save_run_analysis(config.output_dir, trainer.state.log_history, snapshots, probe, splits.label_names)
    kept = {"weights": plain_state_dict(trainer.adapt_model.task_model)} if keep_weights else {}
    return {
        "method": run_label(config.method, config.tapt_steps),
        **scores,
        "proxy_a_distance_before": pad.get("before"),
        "proxy_a_distance_after": pad.get("after"),
        "train_steps": train_output.global_step,
        "source_val_curve": source_val_curve(trainer.state.log_history),
        "wall_time_s": round(time.perf_counter() - start, 1),
        "model_dir": config.output_dir if save else None,
        **({"tapt_loss": trainer.tapt_loss} if trainer.tapt_loss is not None else {}),
        **kept,
    }


def _run_config(config: AdaptConfig, method: str, is_method: bool) -> AdaptConfig:
    """The configuration of one run of :func:`compare_with_source_only`: the method's or, for any other run (the
    baseline, the target-supervised reference), the source-only recipe's, saved to the folder of ``method``; only
    the method pushes to the Hub or pretrains on the target (TAPT)."""
    return dataclasses.replace(config, method=config.method if is_method else SOURCE_ONLY,
                               output_dir=str(Path(config.output_dir) / run_name(method)),
                               push_to_hub=config.push_to_hub and is_method,
                               tapt_steps=config.tapt_steps if is_method else 0)


def _method_card(card_details: dict | None, baseline: dict, config: AdaptConfig) -> dict:
    """The method's model-card details: ``card_details`` and the baseline's scores and convergence warnings (same
    seed and budget)."""
    scores = {k: baseline[k] for k in ("target_accuracy", "target_macro_f1", "source_val_accuracy", "validators")
              if k in baseline}
    scores["warnings"] = baseline_convergence_warnings([baseline], config.early_stopping_patience)
    return {**(card_details or {}), "baseline": scores}


def _train_side_by_side(make_model, config: AdaptConfig, splits: TransferSplits, processing_class,
                        card_details: dict | None, pad_rows: int) -> list[dict]:
    """The baseline in a second process and the method in this one, at once, each with half the torch threads
    (:mod:`hfadapt.evaluation.side_by_side`), the method with all of them again once the baseline has ended;
    returns ``[baseline run, method run]``.

    The method's model card waits for the baseline's scores; if the baseline failed, the method's model is saved
    with a card without them, and the baseline's error is raised after that.
    """
    label = run_label(config.method, config.tapt_steps)
    threads = torch.get_num_threads()
    mine, theirs = thread_split(threads)
    baseline_config = dataclasses.replace(_run_config(config, SOURCE_ONLY, False), disable_tqdm=True)  # one bar
    with second_process(theirs, train_and_evaluate, make_model=make_model, config=baseline_config, splits=splits,
                        processing_class=processing_class, card_details=card_details, pad_rows=pad_rows) as baseline:
        def method_card() -> dict | None:
            try:
                return _method_card(card_details, baseline.get(), config)
            except Exception as err:  # the method's model is still saved; the error is raised below
                logger.warning("the source-only baseline failed (%s): the method's model card has no baseline", err)
                return card_details

        torch.set_num_threads(mine)
        try:
            method_run = train_and_evaluate(make_model, _run_config(config, label, True), splits, processing_class,
                                            card_details=method_card, pad_rows=pad_rows,
                                            callbacks=[ThreadsBackWhenDone(baseline, threads)])
        finally:
            torch.set_num_threads(threads)
        return [baseline.get(), method_run]


def compare_with_source_only(
    make_model: Callable[[], PreTrainedModel],
    config: AdaptConfig,
    splits: TransferSplits,
    processing_class=None,
    with_baseline: bool = True,
    metadata: dict | None = None,
    target_supervised_splits: TransferSplits | None = None,
    card_details: dict | None = None,
    pad_rows: int = 0,
    side_by_side: bool = False,
) -> dict:
    """Train the source-only baseline (if ``with_baseline``) and ``config.method``, each from a fresh model with
    the same seed, data order and number of steps (with ``config.adapt_from_source_only`` the method starts from
    the trained baseline instead: two-stage adaptation); evaluate both on source validation and target test; save
    each model under ``config.output_dir/<run>``; write ``results.json`` there.

    Args:
        make_model: returns a fresh pretrained task model (called once per run, after seeding).
        config: the method's configuration; the baseline uses a copy with ``method="none"``.
        splits: processed (e.g. tokenised) :class:`~hfadapt.data.TransferSplits`; ``target_train`` has no
            labels, ``target_test`` is used only for the final evaluation.
        processing_class: tokenizer or image processor, saved with each model.
        metadata: extra fields for ``results.json`` (domains, model, ...).
        target_supervised_splits: if given (and the target has labels), also train the source-only recipe on these
            splits, whose
            ``source_train`` is *labelled target* data: the target-supervised reference. Each method's run then
            gets ``gap_closed``, the share of the source-only-to-target-supervised gap it closes.
        card_details: domains, dataset and base model for the model cards (``AdaptTrainer.card_details``); the
            method's card also gets the baseline's results. With ``config.push_to_hub`` only the method's model
            is pushed (to ``config.hub_model_id``), once after training, never the baseline or the target-supervised
            reference.
        side_by_side: train the baseline in a second process while the method trains in this one, each with half
            the torch threads (:mod:`hfadapt.evaluation.side_by_side`; sooner than one after the other on a CPU of
            few cores). Where it cannot (several processes, a GPU, one thread, two-stage adaptation, a model factory
            that does not pickle), the runs train one after the other and an info log says why. The call must then
            run under ``if __name__ == "__main__":`` (the second process is spawned).

    Returns:
        ``{"runs": [{"method", "source_val_accuracy", "target_accuracy", "target_gain_vs_source_only",
        "gap_closed", ...}], "target_labels": bool, "negative_transfer": [str], "convergence": [str], ...}``
        (the warnings of :func:`~hfadapt.evaluation.negative_transfer_warnings` and
        :func:`~hfadapt.evaluation.baseline_convergence_warnings`); without target labels the runs carry
        ``validators`` and no target accuracy, gain or gap.

    Raises:
        ValueError: before anything runs, if ``config.adapt_from_source_only`` is set without the baseline.
        OutputDirInUseError: before anything runs, if ``config.output_dir`` holds a previous run's results and
            neither ``overwrite_output_dir`` nor ``resume_from_checkpoint`` is set.
        ValueError: before the baseline trains, if the evaluation sets are too small for the proxy A-distance or the
            label-free validators, or, with ``config.push_to_hub``, if the Hub refuses the token or the repository
            (:class:`~hfadapt.trainer.preflight.HubAccessError`); from ``AdaptTrainer``, on data or a model it refuses.

    ``results.json`` is written last and at once: a run killed before leaves none.
    """
    label = run_label(config.method, config.tapt_steps)  # "tapt" for TAPT then plain fine-tuning
    methods = [SOURCE_ONLY, label] if with_baseline and label != SOURCE_ONLY else [label]
    two_stage = config.two_stage
    if two_stage and not with_baseline:
        raise ValueError("adapt_from_source_only starts the method from the source-only baseline of the same run; "
                         "train the baseline too (drop --baseline false) or set adapt_from_source_only false")
    check_output_dir(config)  # a previous run's results are not replaced without --overwrite_output_dir
    ours = {f"{run_name(m)}/" for m in [*methods, *([TARGET_SUPERVISED] if target_supervised_splits else [])]}
    stale = [f for f in previous_results(config.output_dir) if f.endswith("/") and f not in ours]
    if stale:
        logger.warning("%s keeps run folders this run does not write: %s (results.json will not list them)",
                       config.output_dir, ", ".join(stale))
    # What would fail after the baseline has trained is checked before it trains.
    check_evaluation_sizes(config, splits, pad_rows)
    if config.tapt_steps:
        check_tapt_tokenizer(processing_class)
    check_hub_access(config, str(Path(config.output_dir) / run_name(label)))
    reason = why_not_side_by_side(make_model, config, methods) if side_by_side else None
    if reason:
        logger.info("training the baseline and the method one after the other: %s", reason)
    if side_by_side and not reason:
        runs = _train_side_by_side(make_model, config, splits, processing_class, card_details, pad_rows)
    else:
        runs = []
        for method in methods:
            is_method = method == label
            details = _method_card(card_details, runs[0], config) if is_method and runs else card_details
            # two-stage: the method starts from the baseline's trained weights, which results.json does not hold
            start = runs[0].pop("weights") if two_stage and is_method else None
            runs.append(train_and_evaluate(make_model, _run_config(config, method, is_method), splits,
                                           processing_class, card_details=details, pad_rows=pad_rows,
                                           initial_weights=start, keep_weights=two_stage and not is_method))
    if target_supervised_splits is not None:
        run_config = _run_config(config, TARGET_SUPERVISED, is_method=False)  # the source-only recipe, its own folder
        runs.append({**train_and_evaluate(make_model, run_config, target_supervised_splits, processing_class),
                     "method": TARGET_SUPERVISED})
    baseline = source_only_run(runs)
    oracle = next((r for r in runs if r["method"] == TARGET_SUPERVISED), None)
    if splits.has_target_labels:
        gap = oracle["target_accuracy"] - baseline["target_accuracy"] if baseline and oracle else None
        for run in runs:
            run["target_gain_vs_source_only"] = (run["target_accuracy"] - baseline["target_accuracy"] if baseline
                                                 else None)
            adapting = run["method"] not in (SOURCE_ONLY, TARGET_SUPERVISED)
            run["gap_closed"] = run["target_gain_vs_source_only"] / gap if adapting and gap else None
    settings = {"method": config.method, **config.adaptation_settings(),
                **{k: getattr(config, k) for k in TRAINING_FIELDS}}
    results = {**(metadata or {}), "target_labels": splits.has_target_labels, "seed": config.seed, "runs": runs,
               "negative_transfer": negative_transfer_warnings(runs),
               "convergence": baseline_convergence_warnings(runs, config.early_stopping_patience),
               "config": public_value(settings)}
    if PartialState().is_main_process:
        Path(config.output_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(config.output_dir) / "results.json", json.dumps(results, indent=2))
    return results


def print_results(results: dict, title: str, output_dir: str) -> None:
    """On the main process only: print ``title``, the results table, negative-transfer and baseline-convergence
    warnings and the wall time of each run (seconds); write the run report with its plots (``hfadapt report``)."""
    if not PartialState().is_main_process:
        return
    print(f"\n{title}\n")
    print(format_results_table(results))
    for warning in [*(results.get("negative_transfer") or []), *(results.get("convergence") or [])]:
        print(f"WARNING {warning}")
    report = write_report(output_dir)
    print(f"\nwritten: {Path(output_dir) / 'results.json'}, {report} (with the plots beside it)")
    print(json.dumps({r["method"]: r["wall_time_s"] for r in results["runs"]}))
