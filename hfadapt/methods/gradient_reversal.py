"""Settings of the gradient-reversal schedule of the adversarial methods (DANN, CDAN); the layer and the schedules
are in :mod:`hfadapt.methods.grl`."""

from __future__ import annotations

from dataclasses import dataclass, field

from .grl import GRL_SCHEDULES
from .registry import register_shared_settings
from .settings import check_positive, check_weights


@register_shared_settings
@dataclass
class GRLSettings:
    """The gradient-reversal coefficient's schedule (Ganin et al., JMLR 2016).

    ``grl_schedule`` and ``grl_max_lambda`` drive the adversarial methods; ``grl_gamma`` also sets the steepness of
    every method's ``weight_schedule``, so these settings are shared and every run records them.

    Raises:
        ValueError: from ``__post_init__`` when a value is out of range, naming the field.
    """

    grl_schedule: str = field(
        default="warm_start",
        metadata={
            "help": "Gradient-reversal coefficient schedule: 'warm_start' (Ganin et al. 2016: "
            "lambda_p = max * (2 / (1 + exp(-gamma * p)) - 1), p = optimizer steps done / total), 'cosine_ramp' "
            "(AdaMatch's: max * (1/2 - cos(min(pi, 2 pi p)) / 2)) or 'constant'."
        },
    )
    grl_max_lambda: float = field(
        default=0.1,
        metadata={"help": "Largest gradient-reversal coefficient (Ganin et al. use 1.0 for an encoder trained from "
                  "scratch; 0.1 keeps the adversary gentle when fine-tuning a pretrained one)."},
    )
    grl_gamma: float = field(
        default=10.0,
        metadata={"help": "Steepness gamma of the warm-start schedules (gradient reversal and loss weights)."},
    )

    def __post_init__(self):
        check_weights(self, "grl_max_lambda")
        if self.grl_schedule not in GRL_SCHEDULES:
            raise ValueError(f"grl_schedule must be one of {sorted(GRL_SCHEDULES)}, got {self.grl_schedule!r}")
        check_positive(self, "grl_gamma")
