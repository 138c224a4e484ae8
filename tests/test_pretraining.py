"""Task-adaptive pretraining: masked-LM steps on target text, refused for a checkpoint without an MLM head."""

import datasets
import pytest
import torch
from conftest import VOCAB, tiny_tokenizer
from transformers import AutoModelForSequenceClassification, BertConfig, BertForMaskedLM, BertModel

from hfadapt.trainer.pretraining import continue_pretraining, masked_lm_head_keys


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
