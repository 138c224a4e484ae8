"""The timing benchmarks time plain fine-tuning and the methods that read the tokenizer (FixMatch, AdaMatch), and
the cost of a validator scoring."""

import json

import pytest
import torch
from helpers import load_benchmark
from tiny_models import tiny_tokenizer
from transformers import BertConfig, BertForSequenceClassification


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A saved 1-layer BERT and tokenizer; the vocabulary covers the timing rows' ids (1,000 to 20,000)."""
    folder = tmp_path_factory.mktemp("tiny_timing_model")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=20_000, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=32, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("script, method, extra", [
    ("step_cost", "plain Trainer", {}),
    ("step_cost", "adamatch", {}),
    ("precision_cost", "fixmatch", {"precision": "no"}),
])
def test_time_steps_returns_a_positive_median_for_every_kind_of_method(tiny_checkpoint, script, method, extra):
    bench = load_benchmark(script)
    seconds = bench.time_steps(method, model_path=tiny_checkpoint, length=8, batch_size=4, steps=2, warmup=1,
                               **extra)
    assert seconds > 0


def test_evaluation_cost_writes_its_table_with_a_share_between_zero_and_one(tiny_checkpoint, tmp_path):
    bench = load_benchmark("evaluation_cost")
    output = tmp_path / "cost.json"
    bench.main(["--model_name_or_path", tiny_checkpoint, "--length", "8", "--batch_size", "4", "--steps", "2",
                "--warmup", "1", "--rounds", "1", "--source_rows", "16", "--target_rows", "16",
                "--mixed_precision", "no", "--output", str(output)])
    report = json.loads(output.read_text())
    assert len(report["rounds"]) == 1 and all(v > 0 for v in report["rounds"][0].values())
    assert 0 < report["share_saved"][0] < 1
    assert "| (c) scoring dev, 16 + 16 rows |" in output.with_suffix(".md").read_text()
