"""The parts of a transformers classifier the adaptation model works with: the model under a PEFT wrapper, its
classification head (whose input is the feature space the alignment losses read), and whether it has batch
normalisation (which would mix source and target statistics)."""

from __future__ import annotations

from torch import nn

HEAD_MODULE_NAMES = ("classifier", "score", "logits_proj", "head", "fc")
"""Attribute names under which transformers' ``*ForSequenceClassification`` / ``*ForImageClassification``
models keep their classification head, tried in this order."""


def unwrap_peft(model: nn.Module) -> nn.Module:
    """The underlying transformers model of a ``peft.PeftModel`` (the model itself otherwise)."""
    get_base_model = getattr(model, "get_base_model", None)
    return get_base_model() if callable(get_base_model) else model


def has_batch_norm(model: nn.Module) -> bool:
    """Whether any submodule of ``model`` is a batch-normalisation layer (``BatchNorm1d/2d/3d``, ``SyncBatchNorm``),
    whose training-time statistics mix every row of a batch, source and target alike."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def find_classification_head(model: nn.Module) -> tuple[str, nn.Module]:
    """Return ``(name, module)`` of the classification head of a transformers model (PEFT-wrapped or not).

    Raises:
        ValueError: if none of :data:`HEAD_MODULE_NAMES` is a submodule, naming the model class.
    """
    base = unwrap_peft(model)
    for name in HEAD_MODULE_NAMES:
        module = getattr(base, name, None)
        if isinstance(module, nn.Module):
            return name, module
    raise ValueError(
        f"cannot find the classification head of {type(base).__name__}: none of {HEAD_MODULE_NAMES} is a submodule. "
        "hfadapt adapts AutoModelForSequenceClassification / AutoModelForImageClassification models."
    )
