"""Settings of the domain discriminator that DANN, CDAN and importance weighting train (the network itself is
:class:`~hfadapt.methods.dann.DomainDiscriminator`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .registry import register_shared_settings
from .settings import check_fraction, check_positive


@register_shared_settings
@dataclass
class DiscriminatorSettings:
    """Shape and learning rate of the domain discriminator (Ganin et al., JMLR 2016: a small MLP on the features).

    Read by ``dann``, ``cdan`` and ``iw`` (their network) and by the trainer (the discriminator's learning rate);
    registered as shared settings, so every run records them.

    Raises:
        ValueError: from ``__post_init__`` when a value is out of range, naming the field.
    """

    discriminator_hidden_size: int = field(
        default=256, metadata={"help": "Width of the discriminator's hidden layers."}
    )
    discriminator_num_layers: int = field(default=2, metadata={"help": "Number of hidden layers of the discriminator."})
    discriminator_dropout: float = field(default=0.1, metadata={"help": "Dropout between discriminator layers."})
    discriminator_lr_multiplier: float = field(
        default=10.0,
        metadata={"help": "The discriminator's learning rate is learning_rate times this "
                  "(a fresh head learns faster)."},
    )

    def __post_init__(self):
        check_positive(self, "discriminator_lr_multiplier")
        for name in ("discriminator_hidden_size", "discriminator_num_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_fraction(self, "discriminator_dropout")
