"""Task-adaptive pretraining: masked-LM steps on target text, refused for a checkpoint without an MLM head."""

import dataclasses
import os
import stat
from types import SimpleNamespace

import datasets
import pytest
import torch
from conftest import VOCAB, tiny_bert, tiny_tokenizer, token_dataset
from helpers import make_config
from transformers import AutoModelForSequenceClassification, BertConfig, BertForMaskedLM, BertModel

from hfadapt.data.splits import TransferSplits
from hfadapt.evaluation import experiment
from hfadapt.trainer import pretraining
from hfadapt.trainer.pretraining import (
    EncoderMaskedLM,
    continue_pretraining,
    masked_lm_head_keys,
    pretrain_on_target,
)
from hfadapt.trainer.tapt_cache import tapt_cache_key, tapt_logging_steps


def _config():
    return BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=37, max_position_embeddings=64)


def _texts(n=32):
    g = torch.Generator().manual_seed(0)
    return datasets.Dataset.from_dict(
        {"text": [" ".join(f"w{int(i)}" for i in torch.randint(5, VOCAB, (10,), generator=g)) for _ in range(n)]})


def test_continue_pretraining_moves_the_encoder_and_fine_tunes_from_it(tmp_path):
    torch.manual_seed(0)
    BertForMaskedLM(_config()).save_pretrained(tmp_path / "mlm")
    assert masked_lm_head_keys(str(tmp_path / "mlm")) == []
    out = continue_pretraining(str(tmp_path / "mlm"), _texts(), tiny_tokenizer(), str(tmp_path / "tapt"),
                               max_steps=3, learning_rate=1e-2, per_device_train_batch_size=8, use_cpu=True,
                               disable_tqdm=True)
    before = BertModel.from_pretrained(tmp_path / "mlm").embeddings.word_embeddings.weight
    classifier = AutoModelForSequenceClassification.from_pretrained(out, num_labels=2)
    assert not torch.allclose(before, classifier.bert.embeddings.word_embeddings.weight)


def test_a_checkpoint_without_an_mlm_head_is_refused(tmp_path):
    BertModel(_config()).save_pretrained(tmp_path / "bare")  # as the packaged all-MiniLM-L6-v2: no cls.predictions
    assert any(k.startswith("cls.predictions") for k in masked_lm_head_keys(str(tmp_path / "bare")))
    with pytest.raises(ValueError, match="no pretrained masked-LM head"):
        continue_pretraining(str(tmp_path / "bare"), _texts(), tiny_tokenizer(), str(tmp_path / "out"), max_steps=1)
    with pytest.raises(ValueError, match="no column 'review'"):
        continue_pretraining(str(tmp_path / "bare"), _texts(), tiny_tokenizer(), str(tmp_path / "out"),
                             text_column="review")


# --- TAPT inside a run (AdaptConfig.tapt_steps): the classifier's encoder, in place ------------------------------

def _encoder_state(model):
    return {k: v.detach().clone() for k, v in model.bert.named_parameters()}


def test_pretrain_on_target_trains_the_encoder_only_after_the_head_warm_up(tmp_path):
    rows = token_dataset(32, seed=2, shift=8, labels=False)
    model = tiny_bert()
    model.bert.embeddings.position_embeddings.requires_grad_(False)  # a caller's frozen weight stays frozen
    before, classifier = _encoder_state(model), model.classifier.weight.detach().clone()
    # every step within the head's warm-up (round(0.9 * 3) = 3): the encoder does not move
    losses = pretrain_on_target(model, rows, tiny_tokenizer(), make_config(tmp_path, tapt_steps=3,
                                                                           tapt_head_warmup=0.9))
    assert len(losses) == 3 and all(loss > 0 for loss in losses)
    assert all(torch.equal(before[k], v) for k, v in model.bert.named_parameters())
    # no warm-up, in a run that logs rarely (logging_steps 1000): ten points of the loss curve, one per tenth of
    # the steps; the encoder's layers and input embeddings (the tied output matrix) move; the pooler, which the
    # masked LM does not use, the classifier and the frozen weight do not
    losses = pretrain_on_target(model, rows, tiny_tokenizer(), make_config(
        tmp_path, tapt_steps=20, tapt_head_warmup=0.0, tapt_learning_rate=1e-2, logging_steps=1000))
    assert len(losses) == 10
    after = dict(model.bert.named_parameters())
    assert not torch.equal(before["encoder.layer.0.attention.self.query.weight"],
                           after["encoder.layer.0.attention.self.query.weight"])
    assert not torch.equal(before["embeddings.word_embeddings.weight"], after["embeddings.word_embeddings.weight"])
    assert torch.equal(before["pooler.dense.weight"], after["pooler.dense.weight"])
    assert torch.equal(before["embeddings.position_embeddings.weight"],
                       after["embeddings.position_embeddings.weight"])
    assert torch.equal(classifier, model.classifier.weight)
    assert not model.bert.embeddings.position_embeddings.weight.requires_grad
    assert model.bert.encoder.layer[0].attention.self.query.weight.requires_grad


def _same_weights(a, b):
    return all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_tapt_depends_on_its_inputs_alone_and_the_store_gives_back_what_it_trained(tmp_path, monkeypatch):
    rows, tokenizer = token_dataset(32, seed=2, shift=8, labels=False), tiny_tokenizer()
    config = make_config(tmp_path, tapt_steps=4, tapt_head_warmup=0.5, tapt_learning_rate=1e-2)
    models = []
    for drawn_before in (1, 2):  # what another method's heads drew before TAPT changes nothing
        torch.manual_seed(0)
        models.append(tiny_bert())
        torch.manual_seed(drawn_before)
        torch.rand(drawn_before)
        pretrain_on_target(models[-1], rows, tokenizer, config)
    assert _same_weights(*models)
    # with a store: the first run trains and stores, a second with the same inputs loads, without training, the same
    # weights and loss curve, and leaves the random state as it found it
    config = dataclasses.replace(config, tapt_cache_dir=str(tmp_path / "tapt"))
    torch.manual_seed(0)
    first, second, untouched = tiny_bert(), tiny_bert(), tiny_bert()
    for model in (second, untouched):
        model.load_state_dict(first.state_dict())
    losses = pretrain_on_target(first, rows, tokenizer, config)
    key = tapt_cache_key(second.bert, rows, tokenizer, config)
    assert [p.name for p in (tmp_path / "tapt").iterdir()] == [key]  # one complete entry, no scratch folder left
    monkeypatch.setattr(pretraining, "Trainer", lambda *a, **k: pytest.fail("trained again"))
    state = torch.random.get_rng_state()
    assert pretrain_on_target(second, rows, tokenizer, config) == losses
    assert _same_weights(first, second) and not _same_weights(first, untouched)
    assert torch.equal(state, torch.random.get_rng_state())
    # another seed, other rows or other trainable weights are other keys; where the store keeps it is none of them
    assert tapt_cache_key(untouched.bert, rows, tokenizer, dataclasses.replace(config, seed=1)) != key
    assert tapt_cache_key(untouched.bert, rows.select(range(31)), tokenizer, config) != key
    assert tapt_cache_key(untouched.bert, rows.with_format("torch"), tokenizer, config) == key
    assert tapt_cache_key(untouched.bert, rows, tokenizer, dataclasses.replace(config, tapt_cache_dir="x")) == key
    # the run's logging interval counts only where TAPT logs at another one (4 steps: every step either way)
    assert tapt_cache_key(untouched.bert, rows, tokenizer, dataclasses.replace(config, logging_steps=1000)) == key
    untouched.bert.pooler.requires_grad_(False)
    assert tapt_cache_key(untouched.bert, rows, tokenizer, config) != key
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "tapt" / key).stat().st_mode) == 0o777 & ~umask  # not the scratch folder's 0700


@pytest.mark.parametrize(("logging_steps", "tapt_steps", "expected"), [
    (1000, 250, 25),  # at least ten points
    (5, 250, 5),      # the run's interval where it is finer
    (0.04, 250, 10),  # a share of the steps, as TrainingArguments reads it: ceil(0.04 * 250)
    (0.1, 5, 1),      # at least every step
    (500, 5, 1),
])
def test_tapt_logs_at_the_run_s_interval_or_ten_points_by_hand(logging_steps, tapt_steps, expected):
    config = SimpleNamespace(logging_steps=logging_steps, tapt_steps=tapt_steps)
    assert tapt_logging_steps(config) == expected


def test_the_masked_lm_loss_is_the_cross_entropy_at_the_masked_positions_only():
    module = EncoderMaskedLM(tiny_bert().bert)
    ids = torch.tensor([[1, 7, 9, 11, 2]])
    labels = torch.tensor([[-100, 7, -100, 11, -100]])
    hidden = module.encoder(input_ids=ids).last_hidden_state[0, [1, 3]]
    logits = module.head(hidden, module.encoder.embeddings.word_embeddings.weight)
    expected = -(torch.log_softmax(logits, -1)[0, 7] + torch.log_softmax(logits, -1)[1, 11]) / 2
    assert torch.allclose(module(ids, labels=labels)["loss"], expected, atol=1e-6)
    assert module(ids, labels=torch.full_like(ids, -100))["loss"] == 0.0  # no masked token: zero, not NaN


def _splits():
    return TransferSplits(source_train=token_dataset(32, seed=1), source_val=token_dataset(16, seed=4),
                          target_train=token_dataset(32, seed=2, shift=8, labels=False),
                          target_test=token_dataset(16, seed=3, shift=8), label_names=["neg", "pos"])


def test_tapt_runs_for_the_method_and_never_for_the_source_only_baseline(tmp_path, monkeypatch):
    splits = _splits()
    config = make_config(tmp_path, method="self_training", tapt_steps=2, output_dir=str(tmp_path / "run"))
    results = experiment.compare_with_source_only(tiny_bert, config, splits, processing_class=tiny_tokenizer())
    runs = {run["method"]: run for run in results["runs"]}
    assert "tapt_loss" not in runs["none"] and len(runs["self_training"]["tapt_loss"]) == 2
    assert results["config"]["tapt_steps"] == 2
    # an image model's run (no tokenizer with a mask token) fails before the baseline trains
    monkeypatch.setattr(experiment, "train_and_evaluate", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match="needs the model's tokenizer with a mask token"):
        experiment.compare_with_source_only(tiny_bert, make_config(tmp_path, method="dann", tapt_steps=2,
                                                                   output_dir=str(tmp_path / "r2")), splits)


def test_tapt_alone_is_its_own_run_beside_the_source_only_baseline(tmp_path):
    # method "none" with TAPT steps is TAPT then plain fine-tuning (Gururangan et al.), not the baseline
    splits = _splits()
    config = make_config(tmp_path, method="none", tapt_steps=2, output_dir=str(tmp_path / "run"))
    results = experiment.compare_with_source_only(tiny_bert, config, splits, processing_class=tiny_tokenizer())
    assert [run["method"] for run in results["runs"]] == ["none", "tapt"]
    baseline, tapt = results["runs"]
    assert "tapt_loss" not in baseline and len(tapt["tapt_loss"]) == 2
    assert tapt["target_gain_vs_source_only"] == tapt["target_accuracy"] - baseline["target_accuracy"]
    assert baseline["model_dir"].endswith("source_only") and tapt["model_dir"].endswith("tapt")
    card = (tmp_path / "run" / "tapt" / "README.md").read_text()
    assert "with **TAPT**" in card and "- tapt" in card and "| TAPT (this model) |" in card
    alone = experiment.compare_with_source_only(tiny_bert, dataclasses.replace(config, output_dir=str(tmp_path / "a")),
                                                splits, processing_class=tiny_tokenizer(), with_baseline=False)
    assert [run["method"] for run in alone["runs"]] == ["tapt"]


@pytest.mark.parametrize("bad", [dict(tapt_steps=-1), dict(tapt_learning_rate=0.0), dict(tapt_head_warmup=1.0)])
def test_bad_tapt_settings_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="tapt_steps must be >= 0"):
        make_config(tmp_path, **bad)
