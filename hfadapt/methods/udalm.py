"""UDALM: a masked-language-model objective on the unlabelled target text, trained beside the task.

Karouzos, Paraskevopoulos, Potamianos, "UDALM: Unsupervised Domain Adaptation through Language Modeling",
NAACL 2021. Each batch's target rows are masked as in BERT pre-training (Devlin et al., NAACL 2019): a share
``p`` (0.15) of their non-special tokens is chosen; of those, 80% become ``[MASK]``, 10% a random token and
10% stay. The shared encoder then predicts the original tokens of the chosen positions:

    L = L_task(source) + w * L_MLM(target),   L_MLM = mean over chosen positions of CE(decoder(h_i), x_i)

(the paper's ``lambda L_CLS + (1 - lambda) L_MLM``, up to the overall scale, with ``w = (1 - lambda) / lambda``;
``w = udalm_weight``).
The decoder is BERT's MLM head: ``dense(H, H) -> GELU -> LayerNorm -> linear to the vocabulary``, its output
matrix tied to the model's input embeddings. The transform is freshly initialised (classification checkpoints
and the packaged MiniLM carry no MLM head); the tied output matrix is pretrained.

The classification checkpoints hfadapt starts from carry no MLM head, so ours starts random: its loss is about
``log V`` (10.3 nats for BERT's vocabulary) and its gradient into the encoder far larger than the task's. For the
first ``head_warmup`` fraction of training the head therefore learns on *detached* hidden states (linear probing
before fine-tuning, as LP-FT: Kumar et al., ICLR 2022); only then does the MLM loss train the encoder, with a
small weight (``udalm_weight``, 0.01 by default) so that it pulls less than the task does (measurements in
``docs/recipes.md``).

The output matrix being the input embeddings, the softmax over the vocabulary sends a gradient to every word's
embedding row at every step; AdamW then moves each row by about the learning rate however small its gradient, so
the loss weight does not shrink that drift. ``train_output_embedding=False`` detaches the output matrix: the
embeddings then move only through the encoder's input, for the words in the batch, as under the other methods.

Masks are drawn while :class:`~hfadapt.modeling.model.AdaptModel` has the method heads' own random stream active
(:mod:`hfadapt.utils.rng`), not torch's global one: the backbone's dropout then draws the same numbers as the
source-only run of the same seed, and UDALM differs from it only by its loss, as every other method does (masks
drawn from the global generator would move every later dropout mask).

The same forward serves every method: the masked target rows are also what the other methods' target features
are computed from (a mild input noise); source rows are never masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .base import AlignmentMethod, AlignmentOutput
from .registry import register_method
from .settings import check_fraction, check_weights


def mask_tokens(
    input_ids: torch.Tensor,
    maskable: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: choose positions with ``probability`` among ``maskable``; 80% ``[MASK]``, 10% random, 10% kept.

    Args:
        input_ids: ``(N, L)`` long.
        maskable: ``(N, L)`` bool, positions that may be chosen (real, non-special tokens of rows to mask).
        mask_token_id, vocab_size: the tokenizer's ``[MASK]`` id and the embedding rows.
        probability: share of maskable positions chosen, in ``(0, 1)``.
        generator: random generator (default: torch's global one, seeded by ``Trainer``).

    Returns:
        ``(masked_ids, mlm_labels)``, both ``(N, L)``: labels hold the original id at chosen positions, -100 elsewhere.
    """
    if not 0.0 < probability < 1.0:
        raise ValueError(f"mask probability must be in (0, 1), got {probability}")
    device = input_ids.device
    draw = torch.rand(input_ids.shape, generator=generator, device="cpu").to(device)
    chosen = (draw < probability) & maskable
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    how = torch.rand(input_ids.shape, generator=generator, device="cpu").to(device)
    masked = input_ids.clone()
    masked[chosen & (how < 0.8)] = mask_token_id
    random_pos = chosen & (how >= 0.8) & (how < 0.9)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, device="cpu").to(device)
    masked[random_pos] = random_ids[random_pos]
    return masked, labels


@dataclass
class UDALMSettings:
    """UDALM's settings (Karouzos et al., NAACL 2021; the head warm-up follows LP-FT, Kumar et al., ICLR 2022).
    The reasons for the defaults, with the gradient ratios measured on MiniLM, are in the module docstring.

    Raises:
        ValueError: from ``__post_init__`` on a negative weight, ``udalm_head_warmup`` outside ``[0, 1]`` or
            ``udalm_mask_probability`` outside ``(0, 1)``.
    """

    udalm_weight: float = field(
        default=0.01,
        metadata={"help": "Weight of UDALM's masked-language-model loss on the target text; small, because a fresh "
                  "MLM head's encoder gradient is far larger than the task's."},
    )
    udalm_head_warmup: float = field(
        default=0.1,
        metadata={"help": "Fraction of training during which UDALM's MLM head learns on detached hidden states "
                  "(linear probing first, as LP-FT), so a random head's large gradient does not reach the encoder."},
    )
    udalm_mask_probability: float = field(
        default=0.15, metadata={"help": "Share of target tokens UDALM masks (BERT's 0.15)."}
    )
    udalm_train_output_embedding: bool = field(
        default=True,
        metadata={
            "help": "Whether UDALM's MLM loss trains the decoder's tied output matrix (the input word embeddings). "
            "Its softmax over the vocabulary sends a gradient to every word's row each step, and AdamW scales each "
            "row's step to the learning rate however small that gradient is (the loss weight does not shrink it); "
            "False detaches the matrix, so only the rows of words in the batch move, as with the other methods."
        },
    )

    def __post_init__(self):
        check_weights(self, "udalm_weight")
        check_fraction(self, "udalm_head_warmup", high_open=False)
        check_fraction(self, "udalm_mask_probability", low_open=True)


class MaskedLMHead(nn.Module):
    """BERT's MLM prediction head with an externally owned (tied) output matrix.

    Shape: hidden ``(M, H)`` -> logits ``(M, V)``; ``V`` and the output matrix come from ``embedding.weight``.
    """

    def __init__(self, hidden_size: int, layer_norm_eps: float = 1e-12):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.bias: nn.Parameter | None = None
        nn.init.normal_(self.dense.weight, std=0.02)
        nn.init.zeros_(self.dense.bias)

    @classmethod
    def tied_to(cls, embedding: nn.Embedding, model_config=None) -> MaskedLMHead:
        """A fresh head for the output matrix ``embedding.weight`` ``(V, H)``, with a zero vocabulary bias ``(V,)``,
        on the embedding's device; the LayerNorm epsilon is ``model_config.layer_norm_eps`` (BERT's 1e-12 without)."""
        eps = getattr(model_config, "layer_norm_eps", 1e-12)
        head = cls(embedding.embedding_dim, eps).to(embedding.weight.device)
        head.bias = nn.Parameter(torch.zeros(embedding.num_embeddings, device=embedding.weight.device))
        return head

    def forward(self, hidden: torch.Tensor, output_embedding: torch.Tensor) -> torch.Tensor:
        h = self.layer_norm(F.gelu(self.dense(hidden)))
        return F.linear(h, output_embedding, self.bias)


@register_method
class TargetMaskedLM(AlignmentMethod):
    """UDALM's target masked-language-model loss (module docstring).

    Needs a model with token inputs (``input_ids``), input embeddings and a tokenizer with a mask token
    (:meth:`bind` raises ``ValueError`` otherwise). Shape: ``hidden_states (N, L, H)``, ``mlm_labels (N, L)``;
    output a scalar loss and ``metrics = {"accuracy": masked-token accuracy, "warmup": 1 while the head learns
    alone}``.
    """

    name = "udalm"
    settings_class = UDALMSettings
    needs_hidden_states = True

    def __init__(self, num_domains: int = 2, mask_probability: float = 0.15, head_warmup: float = 0.0,
                 train_output_embedding: bool = True):
        super().__init__(num_domains)
        # raises ValueError naming the setting out of range
        UDALMSettings(udalm_mask_probability=mask_probability, udalm_head_warmup=head_warmup)
        self.mask_probability = float(mask_probability)
        self.head_warmup = float(head_warmup)
        self.train_output_embedding = bool(train_output_embedding)
        self.progress = 0.0
        self.head: MaskedLMHead | None = None
        self._embedding: list[nn.Embedding] = []  # a list keeps the shared embedding out of this module's parameters
        self.mask_token_id: int | None = None
        self.special_ids: torch.Tensor | None = None

    @classmethod
    def from_config(cls, config, feature_dim: int, num_domains: int, num_classes: int) -> TargetMaskedLM:
        settings = config.settings_of(UDALMSettings)
        return cls(num_domains, settings.udalm_mask_probability, settings.udalm_head_warmup,
                   settings.udalm_train_output_embedding)

    def set_progress(self, progress: float) -> None:
        self.progress = float(progress)

    @property
    def warming_up(self) -> bool:
        """Whether the head still learns alone (the MLM gradient does not reach the encoder)."""
        return self.progress < self.head_warmup

    def bind(self, task_model: nn.Module, processing_class=None) -> None:
        mask_token_id = getattr(processing_class, "mask_token_id", None)
        if mask_token_id is None:
            raise ValueError(
                "udalm masks target tokens and needs the model's tokenizer with a mask token: pass "
                "processing_class=tokenizer to AdaptTrainer (image models cannot use udalm)"
            )
        embedding = task_model.get_input_embeddings() if hasattr(task_model, "get_input_embeddings") else None
        if not isinstance(embedding, nn.Embedding):
            raise ValueError(f"udalm needs a model with token input embeddings; {type(task_model).__name__} has none")
        self._embedding = [embedding]
        self.mask_token_id = int(mask_token_id)
        self.special_ids = torch.tensor(sorted(set(getattr(processing_class, "all_special_ids", [])) | {mask_token_id}))
        self.head = MaskedLMHead.tied_to(embedding, getattr(task_model, "config", None))

    def _require_bound(self) -> nn.Embedding:
        if not self._embedding:
            raise ValueError("udalm is not bound to a model; AdaptTrainer calls bind(task_model, tokenizer)")
        return self._embedding[0]

    def prepare_inputs(self, inputs: dict, domain: torch.Tensor) -> tuple[dict, dict]:
        embedding = self._require_bound()
        if "input_ids" not in inputs:
            raise ValueError("udalm needs token inputs (input_ids) in the batch")
        ids = inputs["input_ids"]
        maskable = (domain == self.target_domain).unsqueeze(1).expand_as(ids).clone()
        if inputs.get("attention_mask") is not None:
            maskable &= inputs["attention_mask"].bool()
        maskable &= ~torch.isin(ids, self.special_ids.to(ids.device))
        masked, labels = mask_tokens(ids, maskable, self.mask_token_id, embedding.num_embeddings, self.mask_probability)
        return {**inputs, "input_ids": masked}, {"mlm_labels": labels}

    def forward(
        self,
        features: torch.Tensor,
        domain: torch.Tensor,
        logits: torch.Tensor | None = None,
        hidden_states: torch.Tensor | None = None,
        mlm_labels: torch.Tensor | None = None,
    ) -> AlignmentOutput:
        embedding = self._require_bound()
        if hidden_states is None or mlm_labels is None:
            raise ValueError("udalm needs the last hidden state and the MLM labels of prepare_inputs")
        chosen = mlm_labels != -100
        if not chosen.any():
            zero = hidden_states.sum() * 0.0 + sum(p.sum() for p in self.head.parameters()) * 0.0
            return AlignmentOutput(zero, {"accuracy": zero.detach(), "warmup": zero.detach()})
        hidden = hidden_states[chosen]
        output_embedding = embedding.weight
        if self.warming_up:
            hidden, output_embedding = hidden.detach(), output_embedding.detach()
        elif not self.train_output_embedding:
            output_embedding = output_embedding.detach()
        token_logits = self.head(hidden, output_embedding)
        targets = mlm_labels[chosen]
        loss = F.cross_entropy(token_logits.float(), targets)
        accuracy = (token_logits.argmax(-1) == targets).float().mean()
        warmup = torch.tensor(float(self.warming_up), device=loss.device)
        return AlignmentOutput(loss, {"accuracy": accuracy.detach(), "warmup": warmup})

    def extra_repr(self) -> str:
        return f"mask_probability={self.mask_probability}"
