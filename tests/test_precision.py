import math

import pytest
import torch
from conftest import tiny_bert
from helpers import make_trainer

from hfadapt import AdaptConfig
from hfadapt.utils import precision
from hfadapt.utils.precision import resolve_bf16

cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="what a run on a CPU sets")


def test_resolve_bf16_follows_the_setting_and_the_hardware(monkeypatch):
    assert resolve_bf16("no") is False and resolve_bf16("bf16") is True
    for native in (True, False):
        monkeypatch.setattr(precision, "native_bf16", lambda native=native: native)
        assert resolve_bf16("auto") is native
    with pytest.raises(ValueError, match=r"mixed_precision must be one of \('no', 'bf16', 'auto'\), got 'fp8'"):
        resolve_bf16("fp8")


@cpu_only
def test_bf16_on_a_cpu_sets_use_cpu_and_is_no_adaptation_setting(tmp_path):
    config = AdaptConfig(output_dir=str(tmp_path), report_to="none", mixed_precision="bf16")
    assert config.bf16 and config.use_cpu
    assert "mixed_precision" not in config.adaptation_settings()
    plain = AdaptConfig(output_dir=str(tmp_path), report_to="none")
    assert plain.mixed_precision == "no" and not plain.bf16 and not plain.use_cpu


def test_bad_mixed_precision_values_are_refused(tmp_path):
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        AdaptConfig(output_dir=str(tmp_path), report_to="none", mixed_precision="fp16")
    with pytest.raises(ValueError, match="excludes fp16=True"):
        AdaptConfig(output_dir=str(tmp_path), report_to="none", mixed_precision="bf16", fp16=True)


@pytest.mark.parametrize("setting, dtype", [("no", torch.float32), ("bf16", torch.bfloat16)])
def test_training_runs_under_the_chosen_precision(domains, tmp_path, setting, dtype):
    source, target, _ = domains
    model = tiny_bert()
    seen = set()
    model.classifier.register_forward_hook(lambda module, args, out: seen.add(out.dtype) if module.training else None)
    trainer = make_trainer(model, source, target, tmp_path, method="dann", mixed_precision=setting)
    trainer.train()
    assert seen == {dtype}
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # autocast: the weights stay fp32
