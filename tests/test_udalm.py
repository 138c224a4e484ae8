"""UDALM's target masked-language-model objective: masking, the tied decoder, the loss, training."""

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_bert, tiny_tokenizer, token_dataset
from helpers import assert_same_parameters, backbone_after_training, make_config, trainable_state

from hfadapt import AdaptTrainer
from hfadapt.methods.udalm import TargetMaskedLM, mask_tokens


def test_mask_tokens_follows_bert_80_10_10_and_only_maskable_positions():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 60, (64, 128), generator=g)
    maskable = torch.zeros_like(ids, dtype=torch.bool)
    maskable[:32] = True  # only the first half of the rows (the "target" rows)
    masked, labels = mask_tokens(ids, maskable, mask_token_id=3, vocab_size=64, probability=0.15, generator=g)
    chosen = labels != -100
    assert not chosen[32:].any() and torch.equal(masked[32:], ids[32:])
    assert torch.equal(labels[chosen], ids[chosen])
    assert chosen.float().sum() / maskable.sum() == pytest.approx(0.15, abs=0.01)
    share_mask = (masked[chosen] == 3).float().mean()
    share_kept = (masked[chosen] == ids[chosen]).float().mean()
    assert share_mask == pytest.approx(0.8, abs=0.03) and share_kept == pytest.approx(0.1 + 0.1 / 64, abs=0.03)
    assert torch.equal(masked[~chosen], ids[~chosen])


def test_loss_is_cross_entropy_of_the_tied_decoder_on_masked_positions():
    torch.manual_seed(0)
    model = tiny_bert()
    udalm = TargetMaskedLM()
    udalm.bind(model, tiny_tokenizer())
    assert not any(p is model.get_input_embeddings().weight for p in udalm.parameters())  # tied, not owned
    hidden = torch.randn(2, 5, 32)
    labels = torch.full((2, 5), -100)
    labels[1, 2], labels[1, 4] = 7, 9
    out = udalm(torch.zeros(2, 4), torch.tensor([0, 1]), hidden_states=hidden, mlm_labels=labels)
    head = udalm.head
    h = head.layer_norm(F.gelu(head.dense(hidden[1, [2, 4]])))
    expected = F.cross_entropy(h @ model.get_input_embeddings().weight.T + head.bias, torch.tensor([7, 9]))
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    out.loss.backward()
    assert model.get_input_embeddings().weight.grad is not None  # the MLM trains the shared embeddings


def test_prepare_inputs_masks_target_rows_only_and_never_special_tokens():
    udalm = TargetMaskedLM(mask_probability=0.5)
    udalm.bind(tiny_bert(), tiny_tokenizer())
    ids = torch.tensor([[1] + [10] * 30 + [2, 0]] * 4)
    attention = (ids != 0).long()
    inputs, context = udalm.prepare_inputs({"input_ids": ids, "attention_mask": attention}, torch.tensor([0, 0, 1, 1]))
    labels = context["mlm_labels"]
    assert (labels[:2] == -100).all() and (labels[2:] != -100).any()
    assert (labels[:, [0, 31, 32]] == -100).all()  # [CLS], [SEP], padding
    assert torch.equal(inputs["input_ids"][:2], ids[:2])


def test_udalm_at_weight_zero_trains_the_backbone_exactly_as_the_source_only_baseline(tmp_path):
    # a paired comparison: the baseline forwards the target rows too, so only UDALM's loss may tell the runs apart
    assert_same_parameters(backbone_after_training(tmp_path, method="none"),
                           backbone_after_training(tmp_path, method="udalm", udalm_weight=0.0))


def test_udalm_trains_a_tiny_model_with_dann(tmp_path):
    source, target = token_dataset(32, seed=1), token_dataset(32, seed=2, shift=8, labels=False)
    trainer = AdaptTrainer(tiny_bert(), make_config(tmp_path, method="udalm+dann"), train_dataset=source,
                           target_dataset=target, processing_class=tiny_tokenizer())
    before = trainable_state(trainer)
    trainer.train()
    after = trainable_state(trainer)
    assert [n for n in before if torch.equal(before[n], after[n])] == []
    assert any(n.startswith("methods.udalm.head") for n in before)
    logged = [e for e in trainer.state.log_history if "loss" in e]
    assert all("loss_udalm" in e and "udalm_accuracy" in e for e in logged)
    assert logged[0]["loss_udalm"] == pytest.approx(torch.log(torch.tensor(64.0)).item(), abs=1.0)


def test_udalm_without_a_tokenizer_fails_before_training(tmp_path):
    source, target = token_dataset(16, seed=1), token_dataset(16, seed=2, labels=False)
    with pytest.raises(ValueError, match="tokenizer with a mask token"):
        AdaptTrainer(tiny_bert(), make_config(tmp_path, method="udalm"), train_dataset=source, target_dataset=target)


def test_head_warmup_keeps_the_mlm_gradient_out_of_the_encoder():
    torch.manual_seed(0)
    model = tiny_bert()
    udalm = TargetMaskedLM(head_warmup=0.25)
    udalm.bind(model, tiny_tokenizer())
    hidden = torch.randn(2, 5, 32, requires_grad=True)
    labels = torch.full((2, 5), -100)
    labels[1, 2] = 7
    udalm.set_progress(0.1)
    out = udalm(torch.zeros(2, 4), torch.tensor([0, 1]), hidden_states=hidden, mlm_labels=labels)
    out.loss.backward()
    assert hidden.grad is None and model.get_input_embeddings().weight.grad is None
    assert udalm.head.dense.weight.grad is not None and out.metrics["warmup"].item() == 1.0
    udalm.set_progress(0.25)
    out = udalm(torch.zeros(2, 4), torch.tensor([0, 1]), hidden_states=hidden, mlm_labels=labels)
    out.loss.backward()
    assert hidden.grad is not None and out.metrics["warmup"].item() == 0.0


def test_a_detached_output_matrix_keeps_the_mlm_gradient_off_the_rows_of_absent_words():
    # the tied decoder's softmax reaches every word's embedding row; detached, only the input side does
    def embedding_rows_with_gradient(train_output_embedding):
        torch.manual_seed(0)
        model = tiny_bert()
        udalm = TargetMaskedLM(train_output_embedding=train_output_embedding)
        udalm.bind(model, tiny_tokenizer())
        ids = torch.tensor([[1, 10, 11, 12, 2], [1, 20, 21, 22, 2]])
        hidden = model.bert(input_ids=ids).last_hidden_state
        labels = torch.full_like(ids, -100)
        labels[1, 2] = 21
        udalm(torch.zeros(2, 4), torch.tensor([0, 1]), hidden_states=hidden, mlm_labels=labels).loss.backward()
        grad = model.get_input_embeddings().weight.grad
        return set(torch.nonzero(grad.abs().sum(-1)).flatten().tolist())

    assert len(embedding_rows_with_gradient(True)) == 64  # the whole vocabulary of the tiny model
    assert embedding_rows_with_gradient(False) == {1, 2, 20, 21, 22}  # the words of the row with a masked position
