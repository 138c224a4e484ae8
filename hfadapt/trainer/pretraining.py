"""Task-adaptive pretraining (TAPT): masked language modelling on the unlabelled target text, before fine-tuning.

Gururangan et al., "Don't Stop Pretraining: Adapt Language Models to Domains and Tasks", ACL 2020: continuing
the backbone's own masked-LM objective on the task's unlabelled text (TAPT), or on a larger in-domain corpus
(DAPT), and then fine-tuning as usual, adds points on shifted domains. UDALM (Karouzos et al., NAACL 2021,
``method="udalm"``) runs the same objective *during* fine-tuning instead.

Both need the backbone's pretrained MLM head. A checkpoint without one (a sentence-embedding model such as
all-MiniLM-L6-v2, whose weights are a bare ``BertModel`` tuned contrastively, or a classification checkpoint)
would start the objective from a random decoder, whose first gradients are those of a random head rather than
of the language model: :func:`continue_pretraining` refuses it unless ``allow_new_head=True``.

:func:`pretrain_on_target` is TAPT inside a run (``AdaptConfig.tapt_steps``): the classifier about to be fine-tuned
gets the masked-LM steps on the run's unlabelled target rows first, through BERT's MLM head built fresh over its
encoder with the output matrix tied to its input embeddings (as UDALM's). The head's transform starts random, so
for the first ``tapt_head_warmup`` share of the steps it learns alone on a frozen encoder (linear probing first, as
LP-FT, Kumar et al., ICLR 2022); only then do the steps train the encoder. The classifier's pooler and head are not
touched.
"""

from __future__ import annotations

import logging
import random
import tempfile
from pathlib import Path

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoModelForMaskedLM,
    DataCollatorForLanguageModeling,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
)

from hfadapt.methods.udalm import MaskedLMHead

from .tapt_cache import load_pretrained_encoder, store_pretrained_encoder, tapt_cache_key, tapt_logging_steps

logger = logging.getLogger(__name__)


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


class EncoderMaskedLM(nn.Module):
    """A classifier's encoder under BERT's MLM head (Devlin et al., NAACL 2019), the head's output matrix tied to the
    encoder's input embeddings.

    ``forward(input_ids (N, L), attention_mask (N, L), labels (N, L))`` returns ``{"loss"}``: the mean cross-entropy
    (nats) over the positions whose label is not -100, the vocabulary logits computed at those positions only.
    """

    def __init__(self, encoder: PreTrainedModel):
        super().__init__()
        self.encoder = encoder
        self.head = MaskedLMHead.tied_to(encoder.get_input_embeddings(), encoder.config)

    def forward(self, input_ids, attention_mask=None, labels=None):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        chosen = labels != -100
        if not chosen.any():  # a batch with no masked token: a zero loss that keeps the graph
            return {"loss": hidden.sum() * 0.0}
        logits = self.head(hidden[chosen], self.encoder.get_input_embeddings().weight)
        return {"loss": F.cross_entropy(logits.float(), labels[chosen])}


def check_tapt_tokenizer(tokenizer) -> None:
    """Raise ``ValueError`` unless ``tokenizer`` has a mask token, which TAPT's masking needs (called before any
    training, so that a run with ``tapt_steps`` on an image model fails at once)."""
    if getattr(tokenizer, "mask_token", None) is None:
        raise ValueError("tapt_steps masks target tokens and needs the model's tokenizer with a mask token "
                         f"({type(tokenizer).__name__} has none): pass the tokenizer as processing_class; image "
                         "models cannot use TAPT (set tapt_steps 0)")


def pretrain_on_target(model: PreTrainedModel, target_rows: datasets.Dataset, tokenizer: PreTrainedTokenizerBase,
                       config) -> list[float]:
    """TAPT in place: ``config.tapt_steps`` masked-LM steps of ``model``'s encoder (``model.base_model``) on the
    tokenised ``target_rows`` (their ``input_ids``; BERT's masking of 15% of the tokens, 80/10/10), at
    ``config.tapt_learning_rate`` with 6% warm-up and linear decay (Gururangan et al., ACL 2020), batches of
    ``config.per_device_train_batch_size``, ``config.seed``, on ``config``'s device and in its precision. The first
    ``config.tapt_head_warmup`` share of the steps trains the fresh MLM head alone (module docstring); weights the
    caller froze stay frozen (with PEFT, only the adapters train), the head's initial weights are drawn from
    ``config.seed`` alone, and the global random states (Python, NumPy, torch CPU) are restored afterwards, so the
    result depends on the encoder, the rows, the tokenizer and the settings only. With ``config.tapt_cache_dir``,
    the encoder's weights after TAPT are stored there, and a run with the same inputs loads them instead of
    training (:mod:`hfadapt.trainer.tapt_cache`). :meth:`hfadapt.AdaptTrainer.train` calls it.

    Returns:
        The training loss (nats) logged every ``config.logging_steps`` steps (a share of ``tapt_steps`` if below
        1), or more often, so that there are at least ten points (one per tenth of the steps), in order: how the
        masked LM learnt (:func:`~hfadapt.trainer.tapt_cache.tapt_logging_steps`).

    Raises:
        ValueError: if the tokenizer has no mask token, the model has no token input embeddings, or ``target_rows``
            has no ``input_ids`` (untokenised) or no row.
    """
    check_tapt_tokenizer(tokenizer)
    if "input_ids" not in target_rows.column_names or len(target_rows) == 0:
        raise ValueError(f"TAPT needs tokenised target rows with input_ids; got {len(target_rows)} rows with columns "
                         f"{target_rows.column_names}")
    encoder = model.base_model
    if not isinstance(encoder.get_input_embeddings(), nn.Embedding):
        raise ValueError(f"TAPT needs a model with token input embeddings; {type(model).__name__} has none")
    rows = target_rows.select_columns([c for c in ("input_ids", "attention_mask") if c in target_rows.column_names])
    key = tapt_cache_key(encoder, rows, tokenizer, config) if config.tapt_cache_dir else None
    if key is not None:
        stored = load_pretrained_encoder(config.tapt_cache_dir, key, encoder)
        if stored is not None:
            logger.info("TAPT: the encoder's weights after %d steps loaded from %s", config.tapt_steps,
                        Path(config.tapt_cache_dir) / key)
            return stored
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    with torch.random.fork_rng(devices=[]):  # the head's initial weights depend on the seed alone
        torch.manual_seed(config.seed)
        module = EncoderMaskedLM(encoder)
    head_steps = round(config.tapt_head_warmup * config.tapt_steps)
    logging_steps = tapt_logging_steps(config)
    losses = []
    trainable = {name: p.requires_grad for name, p in encoder.named_parameters()}
    # the run's own random streams go on as if TAPT had not drawn from them (Trainer re-seeds the global ones)
    states = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    with tempfile.TemporaryDirectory(prefix="hfadapt-tapt-") as scratch:
        for steps, encoder_trains in ((head_steps, False), (config.tapt_steps - head_steps, True)):
            if steps <= 0:
                continue
            for name, p in encoder.named_parameters():  # the head alone, then what the caller left trainable
                p.requires_grad_(encoder_trains and trainable[name])
            args = TrainingArguments(
                output_dir=scratch, max_steps=steps, learning_rate=config.tapt_learning_rate, warmup_steps=0.06,
                lr_scheduler_type="linear", weight_decay=0.01,
                per_device_train_batch_size=config.per_device_train_batch_size, seed=config.seed, bf16=config.bf16,
                use_cpu=config.use_cpu, save_strategy="no", report_to="none",
                logging_steps=logging_steps, disable_tqdm=True, dataloader_num_workers=0)
            trainer = Trainer(model=module, args=args, train_dataset=rows, data_collator=collator)
            trainer.train()
            losses += [log["loss"] for log in trainer.state.log_history if "loss" in log]
    for name, p in encoder.named_parameters():  # as the caller had them
        p.requires_grad_(trainable[name])
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.random.set_rng_state(states[2])
    if key is not None:
        store_pretrained_encoder(config.tapt_cache_dir, key, encoder, losses, config)
    return losses
