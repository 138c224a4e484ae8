"""What the consistency self-training methods share (FixMatch, AdaMatch, mean teacher): a second forward of the task
model on an augmented view of the batch's target rows.

The main forward of :class:`~hfadapt.modeling.model.AdaptModel` runs over source and target rows as for every method;
its
target logits, detached, are the *weak* view (the only noise on them is dropout). :meth:`prepare_inputs` keeps the
target rows' model inputs (the main batch is not changed), and :meth:`forward` augments them
(:mod:`hfadapt.augmentation`) and runs the task model, the student, on them again: the *strong* view, whose
gradient trains the model. The augmentation and the second forward's dropout draw from the methods' own random
stream (:mod:`hfadapt.utils.rng`), so the main forward's dropout masks stay the source-only run's.

The augmentation spec may list text and image augmentations; a model whose ``main_input_name`` is ``input_ids``
uses the text ones (which need its tokenizer, for the special tokens and ``[MASK]``), a ``pixel_values`` model the
image ones. The task model is held in a list so that it is not registered (and saved, or moved) twice as a
submodule of the method.
"""

from __future__ import annotations

import torch
from torch import nn

from ..augmentation import ImageAugmenter, SpecialTokens, TextAugmenter, split_augmentation
from ..augmentation.text import TEXT_AUGMENTATIONS
from ..modeling.heads import unwrap_peft
from .base import AlignmentMethod

DEFAULT_AUGMENTATION = "mask:0.1+cutoff:0.1+randaugment:2+cutout:0.5"
"""Strong view by default: for text, 10% of the tokens masked plus a span of 10% cut out of the attention (about a
fifth of each row's tokens hidden; not tuned here); for images, FixMatch's RandAugment (2 operations at random
magnitudes) plus Cutout."""


def check_augmentation(settings, name: str) -> None:
    """Raise ``ValueError`` naming the field ``name`` of ``settings`` unless its augmentation spec parses."""
    try:
        split_augmentation(getattr(settings, name))
    except ValueError as err:
        raise ValueError(f"{name}={getattr(settings, name)!r}: {err}") from None


class ConsistencyMethod(AlignmentMethod):
    """Base of the methods that compare the student's predictions on augmented target rows with a weaker view.

    Args:
        num_domains: source domains + 1.
        augmentation: spec of the strong view, e.g. ``"mask:0.1+cutoff:0.1+randaugment:2+cutout:0.5"``.

    Raises:
        ValueError: on a bad spec (now) or, in :meth:`bind`, a model whose inputs the spec cannot augment.
    """

    def __init__(self, num_domains: int = 2, augmentation: str = DEFAULT_AUGMENTATION):
        super().__init__(num_domains)
        self.augmentation = augmentation
        self.text_steps, self.image_steps = split_augmentation(augmentation)
        self._task_model: list[nn.Module] = []  # a list keeps the task model out of this module's submodules
        self._augmenter: TextAugmenter | ImageAugmenter | None = None
        self.input_name: str | None = None

    def bind(self, task_model: nn.Module, processing_class=None) -> None:
        """Keep the task model and build the augmenter of its input kind.

        Raises:
            ValueError: if the model takes neither ``input_ids`` nor ``pixel_values``, the spec has no augmentation
                of that kind, or text augmentation other than ``dropout`` has no tokenizer (or, to mask, no
                tokenizer with a mask token).
        """
        field = f"{self.name}_augmentation={self.augmentation!r}"
        self.input_name = getattr(unwrap_peft(task_model), "main_input_name", "input_ids")
        if self.input_name == "pixel_values":
            if not self.image_steps:
                raise ValueError(f"{field} has no image augmentation for this image model; add e.g. "
                                 "'randaugment:2+cutout:0.5'")
            self._augmenter = ImageAugmenter(self.image_steps)
        elif self.input_name == "input_ids":
            if not self.text_steps:
                raise ValueError(f"{field} has no text augmentation for this token model; add e.g. 'mask:0.1'")
            self._augmenter = TextAugmenter(self.text_steps, self._special_tokens(processing_class, field))
        else:
            raise ValueError(f"{self.name} augments input_ids or pixel_values; {type(task_model).__name__} takes "
                             f"{self.input_name}")
        self._task_model = [task_model]

    def _special_tokens(self, tokenizer, field: str) -> SpecialTokens:
        """The tokenizer's special tokens; an error if the text steps need them and there is no (masking) tokenizer."""
        needs_tokenizer = any(s.name != "dropout" for s in self.text_steps)
        if getattr(tokenizer, "all_special_ids", None) is None:
            if needs_tokenizer:
                raise ValueError(f"{field} changes tokens and needs the model's tokenizer (for its special tokens): "
                                 "pass processing_class=tokenizer to AdaptTrainer, or use 'dropout'")
            return SpecialTokens(())
        special = SpecialTokens.from_tokenizer(tokenizer)
        if special.mask_token_id is None and any(TEXT_AUGMENTATIONS[s.name].needs_mask_token for s in self.text_steps):
            raise ValueError(f"{field} masks tokens but the tokenizer {type(tokenizer).__name__} has no mask token; "
                             "use 'delete:p' or 'cutoff:r' instead")
        return special

    def _require_bound(self) -> nn.Module:
        if not self._task_model:
            raise ValueError(f"{self.name} is not bound to a model; AdaptTrainer calls bind(task_model, tokenizer)")
        return self._task_model[0]

    def prepare_inputs(self, inputs: dict, domain: torch.Tensor) -> tuple[dict, dict]:
        """Keep the target rows' model inputs as ``target_inputs`` for :meth:`forward`; the batch is unchanged."""
        self._require_bound()
        is_target = domain == self.target_domain
        target = {k: v[is_target] if torch.is_tensor(v) and v.shape[:1] == domain.shape else v
                  for k, v in inputs.items()}
        return inputs, {"target_inputs": target}

    def augment(self, inputs: dict) -> dict:
        """An augmented view of a batch of model inputs (new random draws on every call)."""
        self._require_bound()
        if self.input_name == "pixel_values":
            return {**inputs, "pixel_values": self._augmenter(inputs["pixel_values"])}
        return self._augmenter(inputs)

    def student_logits(self, inputs: dict) -> torch.Tensor:
        """``(M, C)`` logits of the task model (with gradient) on ``inputs``."""
        return self._require_bound()(**inputs).logits

    def weak_logits(self, domain: torch.Tensor, logits: torch.Tensor | None) -> torch.Tensor:
        """``(M, C)`` detached logits of the main forward's target rows: the weak view."""
        return self.require_logits(logits, self.name)[domain == self.target_domain].detach()

    def require_target_inputs(self, target_inputs: dict | None) -> dict:
        """``target_inputs`` of :meth:`prepare_inputs`; ``ValueError`` if the forward did not get them."""
        if target_inputs is None:
            raise ValueError(f"{self.name} needs the target rows' inputs that its prepare_inputs keeps")
        return target_inputs

    def extra_repr(self) -> str:
        return f"augmentation={self.augmentation!r}"
