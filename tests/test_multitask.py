"""Multi-task model: several heads over one backbone, Auto registration, save/reload,
adaptation with L = sum_i lambda_i L_i."""

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
    expected = (ce(out.task_logits["sentiment"][:3], labels[:3])
                + 0.25 * ce(out.task_logits["rating"][[0, 2, 3]], rating[[0, 2, 3]]))
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
        AdaptTrainer(tiny_multitask(), make_config(tmp_path), train_dataset=token_dataset(16, seed=1),
                     target_dataset=target)
    bad = token_dataset(16, seed=1).map(lambda row: {"rating": 7})
    with pytest.raises(ValueError, match="outside"):
        AdaptTrainer(tiny_multitask(), make_config(tmp_path), train_dataset=bad, target_dataset=target)


def soft_shared_multitask(weight: float) -> MultiTaskModel:
    torch.manual_seed(0)
    backbone = tiny_multitask().config.backbone_config
    config = MultiTaskConfig(backbone_config=backbone, tasks={"sentiment": 2, "rating": 4}, classifier_dropout=0.0,
                             soft_sharing_modules=["encoder.layer.1"], soft_sharing_weight=weight)
    return MultiTaskModel(config)


def test_soft_sharing_copies_a_layer_per_task_and_ties_it_by_an_l2_penalty(tmp_path):
    model = soft_shared_multitask(weight=0.5)
    copies = model.soft_shared["rating"]
    assert set(model.soft_shared) == {"rating"} and len(copies) == 16  # BertLayer: 16 tensors (weights + biases)
    ids = torch.randint(1, VOCAB, (4, 6))
    out = model(input_ids=ids)
    # the copies start equal to the main task's layer: no penalty, and the same logits as hard sharing
    assert out.soft_sharing_penalty.item() == 0.0
    hard = MultiTaskModel(MultiTaskConfig(backbone_config=model.config.backbone_config,
                                          tasks={"sentiment": 2, "rating": 4}, classifier_dropout=0.0))
    hard.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("soft_shared")})
    assert torch.allclose(hard(input_ids=ids).task_logits["rating"], out.task_logits["rating"], atol=1e-6)

    # a step on the rating loss alone moves the rating copy of layer 1, never the main task's layer 1
    main_before = {n: p.detach().clone() for n, p in model.backbone.encoder.layer[1].named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model(input_ids=ids, rating=torch.tensor([0, 1, 2, 3])).loss.backward()
    opt.step()
    for n, p in model.backbone.encoder.layer[1].named_parameters():
        assert torch.equal(p, main_before[n])
    moved = {k: v.detach() for k, v in copies.items()}
    by_hand = 0.5 * sum(((moved[n.replace(".", "__")] - p) ** 2).sum()
                        for n, p in model.backbone.named_parameters() if n.startswith("encoder.layer.1."))
    assert by_hand > 0 and model(input_ids=ids).soft_sharing_penalty.item() == pytest.approx(by_hand.item(), rel=1e-6)
    # the penalty is in the loss
    labels, rating = torch.tensor([0, 1, 1, 0]), torch.tensor([3, 1, 0, 2])
    out = model(input_ids=ids, labels=labels, rating=rating)
    assert out.loss.item() == pytest.approx(sum(out.task_losses.values()).item() + by_hand.item(), rel=1e-6)

    model.eval().save_pretrained(tmp_path / "soft")
    loaded = AutoModel.from_pretrained(tmp_path / "soft").eval()
    assert loaded.config.soft_sharing_modules == ["encoder.layer.1"]
    a, b = model(input_ids=ids), loaded(input_ids=ids)
    assert torch.equal(a.task_logits["rating"], b.task_logits["rating"]) and torch.equal(a.logits, b.logits)


def test_adapting_a_soft_shared_multitask_model_logs_the_penalty(tmp_path):
    source = with_rating(token_dataset(32, seed=1))
    target = token_dataset(32, seed=2, shift=8, labels=False)
    trainer = AdaptTrainer(soft_shared_multitask(weight=0.1), make_config(tmp_path, method="dann"),
                           train_dataset=source, target_dataset=target)
    trainer.train()
    logged = [e for e in trainer.state.log_history if "loss" in e]
    assert logged and all("loss_soft_sharing" in e for e in logged)
    assert logged[-1]["loss_soft_sharing"] > 0  # the rating copy has moved away from the main task's layer


def test_soft_sharing_bad_input():
    backbone = tiny_multitask().config.backbone_config
    with pytest.raises(ValueError, match="name no backbone parameter"):
        MultiTaskModel(MultiTaskConfig(backbone_config=backbone, tasks={"sentiment": 2, "rating": 4},
                                       soft_sharing_modules=["encoder.layer.9"]))
    with pytest.raises(ValueError, match="soft_sharing_weight"):
        MultiTaskConfig(backbone_config=backbone, tasks={"sentiment": 2}, soft_sharing_weight=-1.0)


def test_soft_sharing_with_lora_is_refused_before_training(tmp_path):
    source = with_rating(token_dataset(16, seed=1))
    target = token_dataset(16, seed=2, labels=False)
    config = make_config(tmp_path, use_peft=True, lora_target_modules=["query", "value"])
    with pytest.raises(ValueError, match="without use_peft"):
        AdaptTrainer(soft_shared_multitask(0.1), config, train_dataset=source, target_dataset=target)


@pytest.mark.parametrize("built", ["from_config", "from_backbone"])
def test_padding_is_masked_in_the_shared_backbone(tmp_path, built):
    # PretrainedConfig.__init__ used to reset the backbone's attention implementation to None, which BERT runs as
    # eager attention *without* the padding mask: a padded row then differed from the same row unpadded
    model = tiny_multitask()
    if built == "from_backbone":
        model.backbone.save_pretrained(tmp_path / "bert")
        model = MultiTaskModel.from_backbone(str(tmp_path / "bert"), {"sentiment": 2, "rating": 4})
    model.eval()
    ids = torch.randint(1, VOCAB, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    padded = model(input_ids=ids, attention_mask=mask).task_logits["rating"][1]
    alone = model(input_ids=ids[1:, :5]).task_logits["rating"][0]
    assert torch.allclose(padded, alone, atol=1e-5)
