"""An exponential moving average (EMA) of the weights during training, written into the model at the end.

``theta_ema <- d * theta_ema + (1 - d) * theta`` after every optimizer step, starting from the weights at the start of
training (Polyak & Juditsky, "Acceleration of stochastic approximation by averaging", SIAM J. Control Optim. 1992;
the exponential form as in TensorFlow's ``ExponentialMovingAverage`` and timm's ``ModelEmaV2``). The update is
``torch.optim.swa_utils.get_ema_multi_avg_fn``'s.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn
from transformers import TrainerCallback


class WeightEMACallback(TrainerCallback):
    """Keeps an EMA of the trainable weights of ``module`` and copies it into them when training ends, so the model
    that is evaluated and saved afterwards is the EMA model.

    Only parameters with ``requires_grad`` are averaged (under LoRA: the adapters and the head), so the frozen
    backbone is not copied; buffers (BatchNorm statistics) stay the trained model's own. This is why the callback
    does not use ``torch.optim.swa_utils.AveragedModel``, which deep-copies the whole module and averages every
    parameter.

    Args:
        decay: ``d`` in ``(0, 1)``; the EMA forgets with a horizon of about ``1 / (1 - d)`` steps.
        warmup: use ``d_k = min(decay, (1 + k) / (10 + k))`` at the ``k``-th update (TensorFlow's
            ``ExponentialMovingAverage`` with ``num_updates``): without it, ``d = 0.999`` over 300 steps leaves 74%
            of the weight on the initial model (``0.999 ** 300``), whose classification head is untrained.
        module: the module to average; default: the model the Trainer passes to the callback (``AdaptTrainer``
            passes its task model, leaving out the training-only heads).

    Raises:
        ValueError: ``decay`` outside ``(0, 1)``.

    Checkpoints written during training hold the raw weights, not the EMA, and a resumed run restarts the EMA from
    the resumed weights.

    >>> trainer.add_callback(WeightEMACallback(decay=0.999))  # doctest: +SKIP
    """

    def __init__(self, decay: float = 0.999, warmup: bool = True, module: nn.Module | None = None):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay, self.warmup, self.module = decay, warmup, module
        self.num_updates = 0
        self._params: list[nn.Parameter] = []
        self.shadow: list[torch.Tensor] = []
        """The EMA of each trainable parameter, in ``module.parameters()`` order."""

    def current_decay(self) -> float:
        """The decay the next update uses (``decay``, or its warm-up value)."""
        k = self.num_updates + 1
        return min(self.decay, (1 + k) / (10 + k)) if self.warmup else self.decay

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        module = self.module if self.module is not None else model
        self._params = [p for p in module.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self._params]
        self.num_updates = 0

    def on_step_end(self, args, state, control, **kwargs):
        # once per optimizer step (after the step), never per gradient-accumulation micro-batch
        if not self._params:
            return
        get_ema_multi_avg_fn(self.current_decay())(self.shadow, [p.detach() for p in self._params], None)
        self.num_updates += 1

    @torch.no_grad()
    def on_train_end(self, args, state, control, **kwargs):
        for param, average in zip(self._params, self.shadow, strict=True):
            param.copy_(average)
