"""Multi-task model: several heads over one backbone, Auto registration, save/reload, adaptation with L = sum_i lambda_i L_i."""

import pytest
import torch
from conftest import VOCAB, token_dataset
from helpers import make_config, trainable_state
from transformers import AutoConfig, AutoModel, BertConfig

from hfadapt import AdaptTrainer, MultiTaskConfig, MultiTaskModel


def tiny_multitask(weights=None) -> MultiTaskModel:
    torch.manual_seed(0)
    backbone = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=37, max_position_embeddings=64, hidden_dropout_prob=0.0,
                          attention_probs_dropout_prob=0.0)
    config = MultiTaskConfig(backbone_config=backbone, tasks={"sentiment": 2, "rating": 4}, task_weights=weights,
                             classifier_dropout=0.0)
    return MultiTaskModel(config)


def with_rating(ds):
    return ds.map(lambda row: {"rating": row["input_ids"][2] % 4})


def test_save_and_auto_reload_give_identical_outputs(tmp_path):
    model = tiny_multitask({"rating": 0.5}).eval()
    model.save_pretrained(tmp_path / "mt")
    assert AutoConfig.from_pretrained(tmp_path / "mt").model_type == "hfadapt-multitask"
    loaded = AutoModel.from_pretrained(tmp_path / "mt").eval()
    assert isinstance(loaded, MultiTaskModel) and loaded.config.task_weights == {"sentiment": 1.0, "rating": 0.5}
    ids = torch.randint(1, VOCAB, (3, 7))
    a, b = model(input_ids=ids), loaded(input_ids=ids)
    for task in ("sentiment", "rating"):
        assert torch.equal(a.task_logits[task], b.task_logits[task])
    assert loaded.config.main_task == "sentiment" and torch.equal(a.logits, b.logits)  # not "rating", sorted first
    assert a.logits.shape == (3, 2) and a.task_logits["rating"].shape == (3, 4)


def test_loss_is_the_weighted_sum_of_task_losses():
    model = tiny_multitask({"sentiment": 1.0, "rating": 0.25}).eval()
    ids = torch.randint(1, VOCAB, (4, 6))
    labels, rating = torch.tensor([0, 1, 1, -100]), torch.tensor([3, -100, 0, 2])
    out = model(input_ids=ids, labels=labels, rating=rating)
    ce = torch.nn.functional.cross_entropy
    expected = ce(out.task_logits["sentiment"][:3], labels[:3]) + 0.25 * ce(out.task_logits["rating"][[0, 2, 3]], rating[[0, 2, 3]])
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_adapting_a_multitask_model_trains_every_head_and_logs_each_task(tmp_path):
    source = with_rating(token_dataset(32, seed=1))
    target = token_dataset(32, seed=2, shift=8, labels=False)
    model = tiny_multitask({"rating": 0.5})
    trainer = AdaptTrainer(model, make_config(tmp_path, method="dann"), train_dataset=source, target_dataset=target)
    before = trainable_state(trainer)
    trainer.train()
    after = trainable_state(trainer)
    assert [n for n in before if torch.equal(before[n], after[n])] == []
    logged = [e for e in trainer.state.log_history if "loss" in e]
    for e in logged:
        assert e["loss_task"] == pytest.approx(e["loss_task_sentiment"] + 0.5 * e["loss_task_rating"], abs=2e-4)
        assert "loss_dann" in e
    trainer.save_model(str(tmp_path / "saved"))
    reloaded = AutoModel.from_pretrained(tmp_path / "saved").eval()
    ids = torch.tensor(source[:4]["input_ids"])
    trained = trainer.adapt_model.task_model.eval()
    assert torch.allclose(trained(input_ids=ids).task_logits["rating"], reloaded(input_ids=ids).task_logits["rating"])


def test_multitask_bad_input(tmp_path):
    with pytest.raises(ValueError, match="tasks must map"):
        MultiTaskConfig(backbone_config=BertConfig(), tasks={"sentiment": 2, "labels": 3})
    with pytest.raises(ValueError, match="task_weights"):
        MultiTaskConfig(backbone_config=BertConfig(), tasks={"sentiment": 2}, task_weights={"stars": 1.0})
    target = token_dataset(16, seed=2, labels=False)
    with pytest.raises(ValueError, match="no 'rating' column"):
        AdaptTrainer(tiny_multitask(), make_config(tmp_path), train_dataset=token_dataset(16, seed=1), target_dataset=target)
    bad = token_dataset(16, seed=1).map(lambda row: {"rating": 7})
    with pytest.raises(ValueError, match="outside"):
        AdaptTrainer(tiny_multitask(), make_config(tmp_path), train_dataset=bad, target_dataset=target)
