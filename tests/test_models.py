"""DANN and MMD on tiny configs of the BERT-family architectures hfadapt promises: BERT, DistilBERT, RoBERTa."""

import pytest
import torch
from conftest import VOCAB, token_dataset
from helpers import make_trainer, trainable_state
from transformers import (
    DistilBertConfig,
    DistilBertForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
)


def tiny_distilbert():
    torch.manual_seed(0)
    return DistilBertForSequenceClassification(
        DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=37, max_position_embeddings=64,
                         dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0)
    )


def tiny_roberta():
    torch.manual_seed(0)
    return RobertaForSequenceClassification(
        RobertaConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=37, max_position_embeddings=64, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0, pad_token_id=0)
    )


@pytest.mark.parametrize("build", [tiny_distilbert, tiny_roberta], ids=["distilbert", "roberta"])
@pytest.mark.parametrize("feature_source", ["head_input", "mean_pooled"])
def test_architectures_train_with_dann_and_mmd(tmp_path, build, feature_source):
    source, target = token_dataset(24, seed=1), token_dataset(24, seed=2, shift=8, labels=False)
    trainer = make_trainer(build(), source, target, tmp_path, method="dann+mmd", max_steps=3,
                           feature_source=feature_source)
    before = trainable_state(trainer)
    trainer.train()
    after = trainable_state(trainer)
    assert trainer.adapt_model.methods["dann"].discriminator[0].in_features == 32
    assert [n for n in before if torch.equal(before[n], after[n])] == []
    assert all("loss_mmd" in e for e in trainer.state.log_history if "loss" in e)
