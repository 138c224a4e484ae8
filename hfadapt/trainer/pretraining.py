"""Task-adaptive pretraining (TAPT): masked language modelling on the unlabelled target text, before fine-tuning.

Gururangan et al., "Don't Stop Pretraining: Adapt Language Models to Domains and Tasks", ACL 2020: continuing
the backbone's own masked-LM objective on the task's unlabelled text (TAPT), or on a larger in-domain corpus
(DAPT), and then fine-tuning as usual, adds points on shifted domains. UDALM (Karouzos et al., NAACL 2021,
``method="udalm"``) runs the same objective *during* fine-tuning instead.

Both need the backbone's pretrained MLM head. A checkpoint without one (a sentence-embedding model such as
all-MiniLM-L6-v2, whose weights are a bare ``BertModel`` tuned contrastively, or a classification checkpoint)
would start the objective from a random decoder, whose first gradients are those of a random head rather than
of the language model: :func:`continue_pretraining` refuses it unless ``allow_new_head=True``.
"""

from __future__ import annotations

from pathlib import Path

import datasets
from transformers import (
    AutoModelForMaskedLM,
    DataCollatorForLanguageModeling,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
)


def _load_masked_lm(model_name_or_path: str):
    """``(model, missing_keys)``: the checkpoint as ``AutoModelForMaskedLM`` and the weights it initialised fresh."""
    model, info = AutoModelForMaskedLM.from_pretrained(model_name_or_path, output_loading_info=True)
    return model, sorted(info["missing_keys"])


def masked_lm_head_keys(model_name_or_path: str) -> list[str]:
    """The MLM-head weights ``AutoModelForMaskedLM`` would initialise fresh for this checkpoint (empty: it has
    its pretrained head).

    Raises:
        OSError: if ``model_name_or_path`` is no checkpoint transformers can load (as ``from_pretrained`` raises).
    """
    return _load_masked_lm(model_name_or_path)[1]


def continue_pretraining(
    model_name_or_path: str,
    texts: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: str,
    text_column: str = "text",
    max_length: int = 128,
    mlm_probability: float = 0.15,
    allow_new_head: bool = False,
    **training_args,
) -> str:
    """Masked-LM training of ``model_name_or_path`` on ``texts`` (e.g. the unlabelled target rows); the result is
    saved to ``output_dir``, from which ``AutoModelForSequenceClassification.from_pretrained(output_dir, ...)``
    then fine-tunes (the MLM head is dropped there, as for any pretrained checkpoint).

    Args:
        model_name_or_path: a checkpoint with a masked-LM head (BERT, RoBERTa, ...).
        texts: rows with a ``text_column`` of strings.
        tokenizer: the checkpoint's tokenizer (it must have a mask token).
        output_dir: where the adapted backbone and tokenizer are written.
        max_length: tokens per row after truncation.
        mlm_probability: share of tokens masked (BERT's 0.15).
        allow_new_head: continue even if the checkpoint has no pretrained MLM head (the objective then starts
            from a random decoder).
        **training_args: ``TrainingArguments`` fields (``max_steps``, ``learning_rate``,
            ``per_device_train_batch_size``, ``seed``, ...).

    Returns:
        ``output_dir``.

    Raises:
        ValueError: if the checkpoint has no pretrained MLM head (and ``allow_new_head`` is False), the tokenizer
            has no mask token, or ``text_column`` is missing.
    """
    if text_column not in texts.column_names:
        raise ValueError(f"texts has no column {text_column!r} (columns: {texts.column_names})")
    if tokenizer.mask_token is None:
        raise ValueError(f"{type(tokenizer).__name__} has no mask token: masked-LM pretraining needs one")
    model, missing = _load_masked_lm(model_name_or_path)  # loaded once: its missing keys say whether the head is new
    if missing and not allow_new_head:
        raise ValueError(
            f"{model_name_or_path} has no pretrained masked-LM head (AutoModelForMaskedLM would initialise "
            f"{missing[:4]}{' ...' if len(missing) > 4 else ''} fresh): its MLM objective would start from a random "
            "decoder. Use a checkpoint pretrained with MLM (e.g. bert-base-uncased), or pass allow_new_head=True."
        )
    tokenised = texts.map(lambda b: tokenizer(b[text_column], truncation=True, max_length=max_length),
                          batched=True, remove_columns=texts.column_names, desc="tokenising for MLM")
    args = TrainingArguments(output_dir=output_dir, report_to="none", save_strategy="no", **training_args)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability)
    Trainer(model=model, args=args, train_dataset=tokenised, data_collator=collator).train()
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir
