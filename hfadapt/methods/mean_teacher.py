"""Mean teacher for domain adaptation: the student's target predictions are pulled towards those of an EMA teacher.

French, Mackiewicz & Fisher, "Self-ensembling for visual domain adaptation", ICLR 2018, after Tarvainen & Valpola,
"Mean teachers are better role models", NeurIPS 2017. The teacher is a copy of the task model whose weights follow
the student's as an exponential moving average, once per optimizer step:

    theta_teacher <- d * theta_teacher + (1 - d) * theta_student        (d = mean_teacher_ema_decay, 0.99)

Each batch's target rows get two independent augmentations of the same spec (with dropout, both networks see noise,
as in the paper); the teacher predicts ``t_i = softmax`` on one (no gradient), the student ``s_i`` on the other, and

    L = (1 / M) sum_i 1[max_c t_ic > theta] * (1 / C) sum_c (s_ic - t_ic)^2

French et al.'s squared difference of probabilities with confidence thresholding (their code's ``mean`` over classes
and over all ``M`` target rows). Their class-balance loss, which keeps the student from predicting a few classes for
every target row, is added with weight ``b = mean_teacher_class_balance`` (0, off, by default; 0.005 in their code):

    L_cb = r * sum_c BCE(p_c, 1 / C),   p_c = (1 / M) sum_i s_ic,   r = (1 / M) sum_i 1[max_c t_ic > theta]

    L = L_consistency + b * L_cb

Threshold default (``mean_teacher_threshold`` 0.9 rather than French et al.'s 0.968, chosen for 10-class digits and
objects): hfadapt fine-tunes pretrained backbones whose classification head starts near uniform, so the teacher
(which starts as that model) becomes confident only as the task loss trains it; 0.9 lets the consistency term act
sooner on 2- and 3-class tasks. It is a choice, not a tuned value.

Where the teacher lives: it is a submodule of this method, with ``requires_grad=False``. So it moves with
``.to(device)``, follows ``train()``/``eval()``, and is part of the ``AdaptModel`` state a checkpoint holds (a resumed
run continues the same average); ``AdaptTrainer`` optimises only parameters that require a gradient, and saves only
the task model, so the teacher never enters the optimizer nor the saved model. Buffers (normalisation statistics)
are copied from the student at each update. Under DDP every process holds its own teacher; they stay identical
because every process's student holds the same (synchronised) weights and the updates are deterministic.

The update runs in :meth:`MeanTeacher.set_progress`, which the trainer calls once per optimizer step before its
first micro-batch (and at the start of training): the teacher moves whenever the progress has grown since the last
call, i.e. once after each optimizer step, and not at the start of a run. The last progress seen is a buffer, so a
checkpoint holds it with the teacher: a run resumed from a checkpoint written after step ``k`` (whose teacher has not
yet taken step ``k``'s update) makes that update when it starts, as the uninterrupted run did before step ``k + 1``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from ..modeling.features import HeadInputCapture
from .base import AlignmentOutput
from .consistency import DEFAULT_AUGMENTATION, ConsistencyMethod, check_augmentation
from .registry import register_method
from .settings import check_fraction, check_weights


def mean_teacher_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      threshold: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """French et al.'s consistency loss.

    Args:
        student_logits: ``(M, C)`` (gradient flows).
        teacher_logits: ``(M, C)`` (detached here).
        threshold: rows count where the teacher's largest probability is ``> threshold``.

    Returns:
        ``(loss, mask)``: the scalar ``mean_i mask_i * mean_c (s_ic - t_ic)^2`` and the ``(M,)`` bool mask.

    Raises:
        ValueError: if the shapes differ.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits differ in shape: {tuple(student_logits.shape)} vs "
                         f"{tuple(teacher_logits.shape)}")
    student = torch.softmax(student_logits.float(), dim=-1)
    teacher = torch.softmax(teacher_logits.detach().float(), dim=-1)
    mask = teacher.max(-1).values > threshold
    return (((student - teacher) ** 2).mean(-1) * mask.to(student.dtype)).mean(), mask


def class_balance_loss(student_logits: torch.Tensor, mask_rate: torch.Tensor) -> torch.Tensor:
    """French et al.'s class-balance loss: the binary cross-entropy between the student's mean target probability of
    each class and the uniform ``1 / C``, summed over classes and scaled by the share of confident rows.

    Args:
        student_logits: ``(M, C)`` student logits of the target rows (gradient flows).
        mask_rate: scalar share of rows the teacher is confident on (:func:`mean_teacher_loss`'s mask mean).

    Returns:
        The scalar ``r * sum_c -(u log p_c + (1 - u) log(1 - p_c))``, ``u = 1 / C``, ``p_c`` the mean probability,
        with ``1e-6`` inside each log as in French et al.'s code.
    """
    mean_probability = torch.softmax(student_logits.float(), dim=-1).mean(0)
    uniform = 1.0 / student_logits.shape[-1]
    bce = -(uniform * torch.log(mean_probability + 1e-6) + (1 - uniform) * torch.log(1 - mean_probability + 1e-6))
    return bce.sum() * mask_rate


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with ``requires_grad=False`` everywhere and without the forward pre-hooks of
    ``AdaptModel``'s feature capture (the student's head has one; the copy's would be a dead duplicate)."""
    teacher = copy.deepcopy(model)
    teacher.requires_grad_(False)
    for module in teacher.modules():
        for key, hook in list(module._forward_pre_hooks.items()):
            if isinstance(getattr(hook, "__self__", None), HeadInputCapture):
                del module._forward_pre_hooks[key]
    return teacher


@dataclass
class MeanTeacherSettings:
    """The mean teacher's settings (French et al., ICLR 2018).

    Raises:
        ValueError: from ``__post_init__`` on a negative weight, a decay or threshold outside ``[0, 1)`` or an
            augmentation spec that does not parse.
    """

    mean_teacher_weight: float = field(
        default=1.0,
        metadata={"help": "Weight of the mean-teacher consistency loss (squared difference of the student's and the "
                          "EMA teacher's target probabilities; French et al., ICLR 2018)."},
    )
    mean_teacher_ema_decay: float = field(
        default=0.99,
        metadata={"help": "Decay d in [0, 1) of the teacher's exponential moving average of the student's weights, "
                          "one update per optimizer step (French et al.'s 0.99)."},
    )
    mean_teacher_threshold: float = field(
        default=0.9,
        metadata={"help": "Target rows count where the teacher's largest probability is > this, in [0, 1). French "
                          "et al. use 0.968 on 10-class tasks; 0.9 lets the term act sooner on 2-3 class tasks "
                          "whose fresh classification head starts near uniform (a choice, not tuned)."},
    )
    mean_teacher_augmentation: str = field(
        default=DEFAULT_AUGMENTATION,
        metadata={"help": "Augmentation of both the teacher's and the student's view, drawn independently for each "
                          "(as fixmatch_augmentation)."},
    )
    mean_teacher_class_balance: float = field(
        default=0.0,
        metadata={"help": "Weight of French et al.'s class-balance loss, which pulls the student's mean target "
                          "prediction towards uniform classes (0: off; 0.005 in their code)."},
    )

    def __post_init__(self):
        check_weights(self, "mean_teacher_weight", "mean_teacher_class_balance")
        check_fraction(self, "mean_teacher_ema_decay")
        check_fraction(self, "mean_teacher_threshold")
        check_augmentation(self, "mean_teacher_augmentation")


@register_method
class MeanTeacher(ConsistencyMethod):
    """Mean-teacher consistency on the target rows (module docstring). Shape: target inputs of ``M`` rows; output
    a scalar loss and ``metrics = {"mask_rate": share of target rows the teacher is confident on}``.

    Args:
        num_domains: source domains + 1.
        augmentation: spec of both views (:mod:`hfadapt.augmentation`), drawn independently for each.
        ema_decay: ``d`` in ``[0, 1)``.
        threshold: teacher confidence in ``[0, 1)``.

    Raises:
        ValueError: on values out of range or a bad spec; in :meth:`bind`, see
            :class:`~hfadapt.methods.consistency.ConsistencyMethod`.
    """

    name = "mean_teacher"
    needs_target_gradient = False  # both views are forwarded by the method itself
    settings_class = MeanTeacherSettings

    def __init__(self, num_domains: int = 2, augmentation: str = DEFAULT_AUGMENTATION, ema_decay: float = 0.99,
                 threshold: float = 0.9, class_balance: float = 0.0):
        super().__init__(num_domains, augmentation)
        # raises ValueError naming the setting out of range
        MeanTeacherSettings(mean_teacher_ema_decay=ema_decay, mean_teacher_threshold=threshold,
                            mean_teacher_class_balance=class_balance)
        self.ema_decay, self.threshold, self.class_balance = float(ema_decay), float(threshold), float(class_balance)
        self.teacher: nn.Module | None = None
        # progress * 2^40 as an integer (-1: none yet); an integer buffer survives a dtype cast of the model
        self.register_buffer("progress_seen", torch.tensor(-1, dtype=torch.long))

    @classmethod
    def from_config(cls, config, feature_dim: int, num_domains: int, num_classes: int) -> MeanTeacher:
        settings = config.settings_of(MeanTeacherSettings)
        return cls(num_domains, settings.mean_teacher_augmentation, settings.mean_teacher_ema_decay,
                   settings.mean_teacher_threshold, settings.mean_teacher_class_balance)

    def bind(self, task_model: nn.Module, processing_class=None) -> None:
        """Bind as :meth:`ConsistencyMethod.bind` and make the teacher, a frozen copy of the task model now."""
        super().bind(task_model, processing_class)
        self.teacher = frozen_copy(task_model)
        self.progress_seen.fill_(-1)

    def set_progress(self, progress: float) -> None:
        """Move the teacher towards the student if an optimizer step happened since the last call."""
        mark = round(float(progress) * 2**40)
        if 0 <= int(self.progress_seen) < mark:
            self.update_teacher()
        self.progress_seen.fill_(mark)

    @torch.no_grad()
    def update_teacher(self) -> None:
        """One EMA step, ``teacher <- d * teacher + (1 - d) * student``; buffers are copied.

        Raises:
            ValueError: if the method is not bound.
        """
        student = self._require_bound()
        params, buffers = dict(student.named_parameters()), dict(student.named_buffers())
        for name, param in self.teacher.named_parameters():
            param.lerp_(params[name].detach(), 1.0 - self.ema_decay)  # lerp leaves equal weights exactly equal
        for name, buffer in self.teacher.named_buffers():
            buffer.copy_(buffers[name])

    def forward(self, features: torch.Tensor, domain: torch.Tensor, logits: torch.Tensor | None = None,
                target_inputs: dict | None = None) -> AlignmentOutput:
        """The consistency loss between the teacher's and the student's views of the target rows.

        Args:
            features, domain, logits: the main forward's (unused: both views are forwarded here).
            target_inputs: the target rows' model inputs, from :meth:`prepare_inputs`.

        Raises:
            ValueError: if ``target_inputs`` are missing or the method is not bound.
        """
        target_inputs = self.require_target_inputs(target_inputs)
        teacher_view = self.augment(target_inputs)
        with torch.no_grad():
            teacher_logits = self.teacher(**teacher_view).logits
        student_logits = self.student_logits(self.augment(target_inputs))
        loss, mask = mean_teacher_loss(student_logits, teacher_logits, self.threshold)
        metrics = {"mask_rate": mask.float().mean()}
        if self.class_balance:
            balance = class_balance_loss(student_logits, metrics["mask_rate"])
            loss = loss + self.class_balance * balance
            metrics["class_balance"] = balance.detach()
        return AlignmentOutput(loss, metrics)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, ema_decay={self.ema_decay}, threshold={self.threshold}, "
                f"class_balance={self.class_balance}")
