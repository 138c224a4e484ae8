"""The interface every alignment method implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from ..trainer.config import AdaptConfig


@dataclass
class AlignmentOutput:
    """What an alignment method returns for one batch.

    Attributes:
        loss: scalar tensor to be weighted and added to the task loss (gradients flow through it).
        metrics: detached scalar tensors to log, named without prefix (e.g. ``{"accuracy": ...}``); the
            trainer logs them as ``<method>_<name>``.
        source_weights: optional detached ``(N_s,)`` weights of the source rows (in batch order) for the task
            loss, ``sum_i w_i CE_i / sum_i w_i`` (instance weighting); at most one method of a run may set them.
    """

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)
    source_weights: torch.Tensor | None = None


class AlignmentMethod(nn.Module):
    """Base class of an alignment loss over the features the classification head reads.

    Subclasses set ``name`` (the registry key, also the prefix of their settings such as ``<name>_weight``) and
    ``settings_class`` (the dataclass of those settings), implement :meth:`from_config` and :meth:`forward`, and
    register with :func:`hfadapt.methods.register_method`.

    Domain ids follow one convention everywhere: source domains are ``0 .. num_domains - 2`` and the
    target domain is ``num_domains - 1``.
    """

    name: ClassVar[str]
    settings_class: ClassVar[type | None] = None
    """The dataclass of this method's own settings (``<name>_*`` fields, each with its ``help``; ``__post_init__``
    checks them); :meth:`from_config` reads it with ``config.settings_of(settings_class)``."""
    config_prefixes: ClassVar[tuple[str, ...]] = ()
    """Other methods whose settings this method reads too (JAN reads ``mmd``'s kernel settings)."""
    batch_statistic: ClassVar[bool] = False
    """Whether the loss is a statistic of the whole batch rather than a mean over rows (MMD, CORAL, MCC, IM): under
    DDP such a method gets the rows of every process (:mod:`hfadapt.utils.distributed`), so N processes at global batch
    B estimate what one process at batch B does."""
    feature_scale_dependent: ClassVar[bool] = False
    """Whether the loss's scale follows the backbone's feature scale (MMD, JAN, CORAL read raw feature distances or
    covariances): with ``alignment_balancing="gradient"`` its weight becomes a share of the task's feature gradient
    (:mod:`hfadapt.modeling.balancing`). Losses over predicted probabilities (MCC, entropy, IM) are bounded and keep
    their
    weight as it is."""
    adversarial: ClassVar[bool] = False
    """Whether the method reads the features through a gradient-reversal layer (DANN, CDAN): it then has
    ``set_grl_coefficient`` and ``grl_coefficient``, follows the GRL schedule instead of the loss-weight schedule,
    and with ``alignment_balancing="gradient"`` its reversed gradient is balanced
    (:mod:`hfadapt.modeling.balancing`)."""
    needs_hidden_states: ClassVar[bool] = False
    """Whether :meth:`forward` needs the last hidden state (``hidden_states`` keyword, ``(N, L, H)``)."""
    needs_target_gradient: ClassVar[bool] = True
    """Whether the loss back-propagates through the target rows of the main forward (their features or logits).
    Where no method of a run does, :class:`~hfadapt.modeling.model.AdaptModel` forwards those rows without gradient
    (``target_rows_apart``)."""

    def __init__(self, num_domains: int = 2):
        super().__init__()
        if num_domains < 2:
            raise ValueError("alignment needs at least one source and one target domain, "
                             f"got num_domains={num_domains}")
        self.num_domains = num_domains

    @property
    def target_domain(self) -> int:
        """The domain id of the target rows (``num_domains - 1``)."""
        return self.num_domains - 1

    @classmethod
    def from_config(cls, config: AdaptConfig, feature_dim: int, num_domains: int, num_classes: int) -> AlignmentMethod:
        """Build the method from an :class:`~hfadapt.AdaptConfig` (its settings objects, ``config.settings_of``)
        for features of width ``feature_dim`` and a classifier of ``num_classes`` labels."""
        raise NotImplementedError

    def forward(self, features: torch.Tensor, domain: torch.Tensor,
                logits: torch.Tensor | None = None) -> AlignmentOutput:
        """Compute the alignment loss.

        Args:
            features: ``(N, F)`` float, source and target rows of one batch.
            domain: ``(N,)`` long, the domain id of each row (target = ``num_domains - 1``).
            logits: ``(N, C)`` the classifier's logits for the same rows (methods conditioned on predictions,
                such as CDAN, MCC or entropy minimisation, read them; the others ignore them).
        """
        raise NotImplementedError

    def bind(self, task_model: nn.Module, processing_class=None) -> None:
        """Called once by the trainer with the task model and its tokenizer / processor, for methods that share
        the backbone's weights (e.g. UDALM's decoder tied to the input embeddings). Default: nothing.

        Raises:
            ValueError: if the method cannot work with this model or processor.
        """

    def set_progress(self, progress: float) -> None:
        """Called once per optimizer step with the fraction of training done, ``p`` in ``[0, 1]``, for methods
        whose behaviour changes over training (UDALM's head warm-up). Default: nothing."""

    def prepare_inputs(self, inputs: dict, domain: torch.Tensor) -> tuple[dict, dict]:
        """Change a training batch's model inputs before the forward (e.g. mask target tokens for UDALM).

        Returns:
            ``(inputs, context)``: the inputs to run (the given ones by default) and keyword arguments passed on
            to :meth:`forward` (empty by default).
        """
        return inputs, {}

    @staticmethod
    def require_logits(logits: torch.Tensor | None, name: str) -> torch.Tensor:
        """Return ``logits``; raise ``ValueError`` naming the method if they are missing."""
        if logits is None:
            raise ValueError(f"alignment method {name!r} needs the classifier logits of the batch")
        return logits

    def split(self, features: torch.Tensor, domain: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Split ``(N, F)`` features into source rows ``(N_s, F)`` and target rows ``(N_t, F)``."""
        is_target = domain == self.target_domain
        return features[~is_target], features[is_target]
