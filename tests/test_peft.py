import torch
from conftest import tiny_bert
from helpers import make_trainer
from peft import PeftModel
from transformers import AutoModelForSequenceClassification


def _logits(model, ds):
    batch = {"input_ids": torch.tensor(ds["input_ids"]), "attention_mask": torch.tensor(ds["attention_mask"])}
    with torch.no_grad():
        return model.eval()(**batch).logits


def test_lora_trains_only_adapters_head_and_discriminator_and_saves_merged(domains, tmp_path):
    source, target, test = domains
    trainer = make_trainer(tiny_bert(), source, target, tmp_path, method="dann", use_peft=True, lora_r=4,
                           lora_target_modules=["query", "value"])
    trainable = [n for n, p in trainer.adapt_model.named_parameters() if p.requires_grad]
    assert trainable and all(("lora_" in n) or ("classifier" in n) or n.startswith("methods.") for n in trainable)
    frozen = [n for n, p in trainer.adapt_model.named_parameters() if not p.requires_grad]
    assert any("attention.self.query.base_layer" in n for n in frozen)
    trainer.train()
    out = tmp_path / "merged"
    trainer.save_model(str(out))
    loaded = AutoModelForSequenceClassification.from_pretrained(out)
    torch.testing.assert_close(_logits(loaded, test), _logits(trainer.adapt_model.task_model, test))


def test_lora_adapter_save_loads_with_peft(domains, tmp_path):
    source, target, test = domains
    base_dir = tmp_path / "base"
    tiny_bert().save_pretrained(base_dir)
    base = AutoModelForSequenceClassification.from_pretrained(base_dir)
    trainer = make_trainer(base, source, target, tmp_path, method="mmd", use_peft=True, peft_save="adapter",
                           lora_target_modules=["query", "value"])
    trainer.train()
    out = tmp_path / "adapter"
    trainer.save_model(str(out))
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()
    reloaded = PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(base_dir), out)
    torch.testing.assert_close(_logits(reloaded, test), _logits(trainer.adapt_model.task_model, test))
