"""A store of encoders after task-adaptive pretraining, so that runs on the same target text pay for TAPT once.

TAPT's result (:func:`~hfadapt.trainer.pretraining.pretrain_on_target`) depends only on the encoder's weights
before it, which of them train, the target rows, the tokenizer, the TAPT settings and the seed, not on the method
trained after it. Runs of several methods on one target (a benchmark grid, or a user comparing methods) can therefore
share it: with ``AdaptConfig.tapt_cache_dir`` set, the encoder's weights after TAPT and its loss curve are stored
under a sha256 of all of those (:func:`tapt_cache_key`), and a later run with the same key loads them instead of
training again. The key also holds the torch and transformers releases and the device type, whose kernels can
change the numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import datasets
import torch
import transformers
from accelerate import PartialState
from safetensors.torch import load_model, save_model
from torch import nn

WEIGHTS_FILE = "encoder.safetensors"
"""Per stored entry: the encoder's weights after TAPT (shared tensors stored once)."""
LOSS_FILE = "tapt.json"
"""Per stored entry: ``{"loss": [...], "settings": {...}}``, the loss curve TAPT logged; written last."""
TAPT_SETTINGS = ("tapt_steps", "tapt_learning_rate", "tapt_head_warmup", "per_device_train_batch_size", "seed",
                 "bf16")
"""``AdaptConfig`` fields TAPT reads, besides its logging interval (:func:`tapt_logging_steps`)."""


def tapt_logging_steps(config) -> int:
    """How often TAPT logs its loss, in steps: the run's ``logging_steps`` (a share of ``tapt_steps`` if below 1,
    as ``TrainingArguments`` reads it), but at least ten points over ``tapt_steps`` and at least every step."""
    every = config.logging_steps
    every = math.ceil(every * config.tapt_steps) if every < 1 else int(every)
    return max(1, min(every, config.tapt_steps // 10))


def _settings(config) -> dict:
    return {**{name: getattr(config, name) for name in TAPT_SETTINGS}, "logging_steps": tapt_logging_steps(config)}


def _update_with_tensors(digest, named_tensors) -> None:
    for name, tensor in named_tensors:
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())


def tapt_cache_key(encoder: nn.Module, rows: datasets.Dataset, tokenizer, config) -> str:
    """sha256 (hex) of what TAPT's result depends on.

    Args:
        encoder: the encoder about to be pretrained; its weights (bytes, dtypes) and which of them train.
        rows: the tokenised target rows (``input_ids`` and ``attention_mask`` values, in order).
        tokenizer: its class, special-token ids and vocabulary.
        config: an ``AdaptConfig``; its :data:`TAPT_SETTINGS` and TAPT's logging interval (so runs that log at
            different intervals share an entry when TAPT logs at the same one).

    Also in the key: the torch and transformers releases and the encoder's device type.
    """
    digest = hashlib.sha256()
    _update_with_tensors(digest, sorted(encoder.state_dict().items()))
    rows = rows.with_format(None)  # Python lists, whatever format the caller set
    described = {
        "trainable": sorted(name for name, p in encoder.named_parameters() if p.requires_grad),
        "encoder": type(encoder).__name__,
        "settings": _settings(config),
        "tokenizer": [type(tokenizer).__name__, tokenizer.mask_token_id, tokenizer.pad_token_id, len(tokenizer)],
        "vocabulary": hashlib.sha256(json.dumps(sorted(tokenizer.get_vocab().items())).encode()).hexdigest(),
        "rows": {column: hashlib.sha256(json.dumps(list(rows[column])).encode()).hexdigest()
                 for column in ("input_ids", "attention_mask") if column in rows.column_names},
        "releases": [torch.__version__, transformers.__version__],
        "device": next(encoder.parameters()).device.type,
    }
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def load_pretrained_encoder(cache_dir: str, key: str, encoder: nn.Module) -> list[float] | None:
    """Load the stored weights of ``key`` into ``encoder`` and return their TAPT loss curve (nats), or return
    ``None`` (``encoder`` untouched) if ``cache_dir`` holds no complete entry for ``key``.

    Raises:
        RuntimeError: from ``safetensors.torch.load_model``, if the stored weights do not fit ``encoder``.
    """
    folder = Path(cache_dir) / key
    if not (folder / LOSS_FILE).is_file():
        return None
    load_model(encoder, str(folder / WEIGHTS_FILE), strict=True)
    return json.loads((folder / LOSS_FILE).read_text())["loss"]


def store_pretrained_encoder(cache_dir: str, key: str, encoder: nn.Module, losses: list[float], config) -> None:
    """Store ``encoder``'s weights and ``losses`` under ``key`` (on the main process only). The entry is written
    in a scratch folder beside it and then renamed into place, so a reader never sees half of one; if another
    process stored the same key meanwhile, its entry is kept. The entry's folder gets the permissions the umask
    gives a new folder (a scratch folder is private), so a store shared between users stays readable.

    Raises:
        OSError: if ``cache_dir`` cannot be written and holds no complete entry for ``key``.
    """
    if not PartialState().is_main_process:
        return
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=cache_dir))
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(scratch, 0o777 & ~umask)
        save_model(encoder, str(scratch / WEIGHTS_FILE))
        (scratch / LOSS_FILE).write_text(json.dumps({"loss": losses, "settings": _settings(config)}))
        os.replace(scratch, Path(cache_dir) / key)
    except OSError:
        if not (Path(cache_dir) / key / LOSS_FILE).is_file():
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
