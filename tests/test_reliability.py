"""No silent wrong model, no lost work: each bad input or damaged file gives a named error before any training step,
with nothing written or overwritten; resumed runs train what they say they train (docs/reliability.md)."""

import hashlib
import json
import os
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
import transformers.utils.hub
from conftest import VOCAB, tiny_bert, tiny_tokenizer, token_dataset
from helpers import Killed, kill_after_checkpoint, make_config, make_trainer
from hub_fake import LocalHub
from safetensors.torch import load_file
from transformers import BertConfig, BertForTokenClassification

from hfadapt import AdaptTrainer
from hfadapt.data import TransferSplits
from hfadapt.evaluation.experiment import compare_with_source_only
from hfadapt.trainer.checkpointing import ADAPT_STATE_NAME, load_adapt_state
from hfadapt.trainer.fingerprint import FINGERPRINT_NAME, RunMismatchError
from hfadapt.trainer.integrity import MANIFEST_NAME, IntegrityError, verify_manifest, write_manifest
from hfadapt.trainer.preflight import HubAccessError


def tree(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder`` (empty if it does not exist)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def trained_once(tmp_path, domains, **overrides):
    """A finished 4-step DANN run with a checkpoint every 2 steps under ``tmp_path/out``."""
    source, target, _ = domains
    settings = dict(method="dann", save_strategy="steps", save_steps=2, **overrides)
    trainer = make_trainer(tiny_bert(), source, target, tmp_path, **settings)
    trainer.train()
    return trainer


# ---- resume ---------------------------------------------------------------------------------------------------


def test_resume_trains_on_to_a_larger_max_steps_and_the_card_says_so(domains, tmp_path):
    first = trained_once(tmp_path, domains)
    four_steps = {k: v.clone() for k, v in first.adapt_model.state_dict().items()}
    source, target, _ = domains
    again = make_trainer(tiny_bert(seed=3), source, target, tmp_path, method="dann", save_strategy="steps",
                         save_steps=2, max_steps=6)
    output = again.train(resume_from_checkpoint=True)
    assert output.global_step == 6 and again.state.global_step == 6
    assert (tmp_path / "out" / "checkpoint-6").is_dir()
    changed = [k for k, v in again.adapt_model.state_dict().items() if not torch.equal(v, four_steps[k])]
    assert any(k.startswith("task_model.") for k in changed)
    again.create_model_card()
    card = (tmp_path / "out" / "README.md").read_text()
    assert "`max_steps=6`" in card and "taken 6 optimizer steps" in card


def test_resume_past_max_steps_is_refused(domains, tmp_path):
    trained_once(tmp_path, domains)
    before = tree(tmp_path / "out")
    source, target, _ = domains
    shorter = make_trainer(tiny_bert(), source, target, tmp_path, method="dann", save_strategy="steps",
                           save_steps=2, max_steps=2)
    with pytest.raises(ValueError, match=r"checkpoint-4 has trained 4 optimizer steps, more than max_steps=2"):
        shorter.train(resume_from_checkpoint=True)
    assert tree(tmp_path / "out") == before


@pytest.mark.parametrize("change, named", [
    ({"learning_rate": 2e-3}, "recipe learning_rate: checkpoint 0.001, this run 0.002"),
    ({"seed": 1}, "recipe seed: checkpoint 0, this run 1"),
    ({"method": "mmd"}, "method: checkpoint 'dann', this run 'mmd'"),
    ({"target": token_dataset(32, seed=7, shift=8, labels=False)}, "data target"),
    ({"model": tiny_bert(num_labels=3)}, "model config_sha256"),
])
def test_a_checkpoint_of_another_run_is_refused_naming_what_differs(domains, tmp_path, change, named):
    trained_once(tmp_path, domains)
    before = tree(tmp_path / "out")
    source, target, _ = domains
    change = dict(change)
    model, target = change.pop("model", tiny_bert()), change.pop("target", target)
    settings = {"method": "dann", "save_strategy": "steps", "save_steps": 2, **change}
    other = make_trainer(model, source, target, tmp_path, **settings)
    with pytest.raises(RunMismatchError, match="written by a different run") as caught:
        other.train(resume_from_checkpoint=True)
    assert named in str(caught.value)
    assert tree(tmp_path / "out") == before


def test_true_resumes_the_latest_checkpoint_of_this_run_not_of_another(domains, tmp_path):
    mine = trained_once(tmp_path, domains)
    expected = {k: v.clone() for k, v in mine.adapt_model.state_dict().items()}
    source, target, _ = domains
    # another run (another seed) leaves a later checkpoint in the same folder
    make_trainer(tiny_bert(), source, target, tmp_path, method="dann", seed=1, save_strategy="steps",
                 save_steps=6, max_steps=6).train()
    assert (tmp_path / "out" / "checkpoint-6").is_dir()
    again = make_trainer(tiny_bert(), source, target, tmp_path, method="dann", save_strategy="steps", save_steps=2)
    output = again.train(resume_from_checkpoint=True)
    assert output.global_step == 4  # its own checkpoint-4: nothing left to train
    for name, value in again.adapt_model.state_dict().items():
        assert torch.equal(value, expected[name]), name


def test_checkpoints_carry_the_fingerprint_and_a_manifest(domains, tmp_path):
    trained_once(tmp_path, domains)
    for step in (2, 4):
        folder = tmp_path / "out" / f"checkpoint-{step}"
        manifest = verify_manifest(folder)
        assert {ADAPT_STATE_NAME, "model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json",
                FINGERPRINT_NAME} <= set(manifest["files"])
        fingerprint = json.loads((folder / FINGERPRINT_NAME).read_text())
        assert set(fingerprint) == {"method", "recipe", "data", "model", "sha256"}
        assert "max_steps" not in fingerprint["recipe"] and fingerprint["recipe"]["learning_rate"] == 1e-3


@pytest.mark.parametrize("min_steps, stores_min_steps, max_steps, killed_at", [
    (0, True, 8, 2), (5, True, 8, 2), (5, False, 8, 2),  # killed while training
    (0, True, 8, 4), (0, True, 3, 3),  # killed after the checkpoint of the last step (early stop; max_steps)
])
def test_a_resumed_run_stops_early_where_the_uninterrupted_run_stops(domains, tmp_path, monkeypatch, min_steps,
                                                                     stores_min_steps, max_steps, killed_at):
    # a metric that never improves: the best checkpoint is the first, the patience counter rises at every later
    # evaluation, and the run stops at the third such evaluation once min_steps are done. A killed run must resume
    # with its counter, not a fresh one, with this run's min_steps even where the checkpoint's state lacks them,
    # and, killed after its last step, end with the best checkpoint's weights without training on.
    from transformers import EarlyStoppingCallback

    from hfadapt.trainer.callbacks import MinStepsEarlyStoppingCallback

    source, target, _ = domains
    settings = dict(method="dann", eval_strategy="steps", eval_steps=1, save_strategy="steps", save_steps=1,
                    max_steps=max_steps, early_stopping_patience=3, early_stopping_min_steps=min_steps,
                    load_best_model_at_end=True, metric_for_best_model="constant")

    def trainer(folder):
        return AdaptTrainer(tiny_bert(), make_config(folder, **settings), train_dataset=source,
                            target_dataset=target, eval_dataset=source, compute_metrics=lambda _: {"constant": 1.0})
    whole = trainer(tmp_path / "whole")
    whole.train()
    assert whole.state.global_step == min(max(4, min_steps), max_steps)
    assert Path(whole.state.best_model_checkpoint).name == "checkpoint-1"

    kill_after_checkpoint(monkeypatch, killed_at)
    if not stores_min_steps:
        monkeypatch.setattr(MinStepsEarlyStoppingCallback, "state", EarlyStoppingCallback.state)
    with pytest.raises(Killed):
        trainer(tmp_path / "resumed").train()
    monkeypatch.undo()
    resumed = trainer(tmp_path / "resumed")
    resumed.train(resume_from_checkpoint=True)
    assert resumed.state.global_step == whole.state.global_step
    assert resumed.state.best_model_checkpoint.endswith(Path(whole.state.best_model_checkpoint).name)
    for name, value in whole.adapt_model.state_dict().items():
        torch.testing.assert_close(resumed.adapt_model.state_dict()[name], value, rtol=1e-5, atol=1e-6, msg=name)


# ---- integrity ------------------------------------------------------------------------------------------------


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def overwrite_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(16 - i for i in range(16))  # same size, other bytes
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, file, message", [
    (truncate, ADAPT_STATE_NAME, "is truncated or was rewritten"),
    (empty, ADAPT_STATE_NAME, "is truncated or was rewritten"),
    (empty, "model.safetensors", "is truncated or was rewritten"),
    (overwrite_middle, ADAPT_STATE_NAME, "is corrupt: its sha256 differs"),
    (overwrite_middle, "rng_state.pth", "is corrupt: its sha256 differs"),
    (os.remove, "trainer_state.json", "is missing"),
    (os.remove, MANIFEST_NAME, "has no sha256_manifest.json"),
])
def test_a_damaged_checkpoint_is_refused_naming_the_file(domains, tmp_path, damage, file, message):
    trained_once(tmp_path, domains)
    checkpoint = tmp_path / "out" / "checkpoint-4"
    damage(checkpoint / file)
    before = tree(tmp_path / "out")
    source, target, _ = domains
    again = make_trainer(tiny_bert(), source, target, tmp_path, method="dann", max_steps=6, save_strategy="steps",
                         save_steps=2)
    with pytest.raises(IntegrityError, match=message) as caught:
        again.train(resume_from_checkpoint=str(checkpoint))
    assert str(checkpoint) in str(caught.value) and file in str(caught.value)
    assert tree(tmp_path / "out") == before


def test_missing_optimizer_state_is_an_error_unless_weights_only(domains, tmp_path):
    trained_once(tmp_path, domains)
    checkpoint = tmp_path / "out" / "checkpoint-2"
    os.remove(checkpoint / "optimizer.pt")
    before = tree(tmp_path / "out")
    source, target, _ = domains
    again = make_trainer(tiny_bert(), source, target, tmp_path, method="dann", save_strategy="steps", save_steps=2)
    with pytest.raises(IntegrityError, match=r"checkpoint-2/optimizer.pt is missing.*resume_weights_only=True"):
        again.train(resume_from_checkpoint=str(checkpoint))
    assert tree(tmp_path / "out") == before
    weights_only = make_trainer(tiny_bert(), source, target, tmp_path, method="dann", save_strategy="steps",
                                save_steps=2, resume_weights_only=True)
    assert weights_only.train(resume_from_checkpoint=str(checkpoint)).global_step == 4


def test_the_saved_model_folder_has_a_manifest_that_names_damage(domains, tmp_path):
    trainer = trained_once(tmp_path, domains)
    trainer.save_model()
    out = tmp_path / "out"
    assert {"model.safetensors", "config.json"} <= set(verify_manifest(out)["files"])
    assert not (out / ".model-in-progress").exists()
    trainer.create_model_card()  # written after the manifest: not listed, so it does not void it
    verify_manifest(out)
    truncate(out / "model.safetensors")
    with pytest.raises(IntegrityError, match=r"out/model.safetensors is truncated"):
        verify_manifest(out)
    plain = tmp_path / "plain"
    tiny_bert().save_pretrained(plain)
    assert verify_manifest(plain, missing_ok=True) is None
    with pytest.raises(IntegrityError, match="has no sha256_manifest.json"):
        verify_manifest(plain)


def test_an_unreadable_adapt_state_names_its_path(domains, tmp_path):
    trainer = trained_once(tmp_path, domains)
    path = tmp_path / "out" / "checkpoint-2" / ADAPT_STATE_NAME
    truncate(path)
    with pytest.raises(IntegrityError, match=f"{path} is not a readable safetensors file"):
        load_adapt_state(trainer.adapt_model, str(path.parent))


# ---- checks before the first training step -----------------------------------------------------------------


def out_of_vocabulary(n: int, seed: int, labels: bool) -> datasets.Dataset:
    ds = token_dataset(n, seed=seed, shift=8, labels=labels)
    ids = [list(row) for row in ds["input_ids"]]
    ids[5][3] = VOCAB + 6
    return ds.remove_columns("input_ids").add_column("input_ids", ids)


def test_target_token_ids_beyond_the_vocabulary(domains, tmp_path):
    source, _, _ = domains
    with pytest.raises(ValueError, match=rf"target_dataset: input_ids of row 5 holds {VOCAB + 6}, outside the "
                                         rf"model's range \[0, {VOCAB}\)"):
        make_trainer(tiny_bert(), source, out_of_vocabulary(32, 2, labels=False), tmp_path)
    assert not (tmp_path / "out").exists()


def test_eval_token_ids_beyond_the_vocabulary(domains, tmp_path):
    source, target, _ = domains
    with pytest.raises(ValueError, match="eval dataset 'target_test': input_ids of row 5"):
        make_trainer(tiny_bert(), source, target, tmp_path,
                     eval_dataset={"target_test": out_of_vocabulary(16, 3, labels=True)})
    assert not (tmp_path / "out").exists()


def test_source_and_target_rows_that_cannot_share_a_batch(domains, tmp_path):
    source, _, _ = domains
    longer = datasets.Dataset.from_dict({"input_ids": [[1] + [9] * 15] * 8, "attention_mask": [[1] * 16] * 8})
    with pytest.raises(ValueError, match="a source row and a target row cannot be collated"):
        make_trainer(tiny_bert(), source, longer, tmp_path)  # no tokenizer: the default collator stacks


def test_wrongly_shaped_target_images(tmp_path):
    from test_vision import tiny_vit

    with pytest.raises(ValueError, match=r"cannot run on rows of target_dataset \(inputs \{'pixel_values': "
                                         r"\(1, 1, 32, 32\)\}\)"):
        AdaptTrainer(tiny_vit(), make_config(tmp_path), train_dataset=pixel_rows(16, 1),
                     target_dataset=pixel_rows(16, 2, labels=False, side=32))
    assert not (tmp_path / "out").exists()


def test_a_token_classification_model_is_refused_with_the_reason(domains, tmp_path):
    source, target, _ = domains
    model = BertForTokenClassification(BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1,
                                                  num_attention_heads=2, intermediate_size=37, num_labels=2))
    with pytest.raises(ValueError, match="BertForTokenClassification is a model for token classification, one "
                                         "label per token"):
        make_trainer(model, source, target, tmp_path)
    assert not (tmp_path / "out").exists()


def test_a_per_token_head_under_another_name_is_refused_by_its_logits(domains, tmp_path):
    source, target, _ = domains

    class PerTokenClassifier(BertForTokenClassification):  # a name the list of other heads does not know
        pass

    model = PerTokenClassifier(BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1,
                                          num_attention_heads=2, intermediate_size=37, num_labels=2))
    with pytest.raises(ValueError, match=r"logits of shape \(2, 12, 2\) on 2 rows of train_dataset "
                                         r"\(source\).*not models that label tokens"):
        make_trainer(model, source, target, tmp_path)


def pixel_rows(n: int, seed: int, nan_row: int | None = None, labels: bool = True,
               side: int = 16) -> datasets.Dataset:
    """``n`` stored ``(1, side, side)`` float images for the tiny ViT (which takes 16 x 16), ``label`` in 0..2."""
    g = np.random.default_rng(seed)
    pixels = g.normal(size=(n, 1, side, side)).astype(np.float32)
    if nan_row is not None:
        pixels[nan_row, 0, 3, 3] = np.nan
    row = {"pixel_values": pixels.tolist()}
    if labels:
        row["label"] = g.integers(0, 3, n).tolist()
    return datasets.Dataset.from_dict(row)


def test_nan_in_stored_eval_inputs_is_refused_before_training(tmp_path):
    from test_vision import tiny_vit

    with pytest.raises(ValueError, match=r"eval dataset 'target_test': pixel_values of row 2 holds nan"):
        AdaptTrainer(tiny_vit(), make_config(tmp_path), train_dataset=pixel_rows(16, 1),
                     target_dataset=pixel_rows(16, 2, labels=False),
                     eval_dataset={"target_test": pixel_rows(8, 3, nan_row=2)})


def test_nan_in_lazily_made_eval_inputs_names_the_eval_set(tmp_path):
    from test_vision import tiny_vit

    def pixels_with_nan(batch):
        """Stored ``pixels`` as ``pixel_values``, NaN in the rows flagged ``bad`` (the transform makes the NaN)."""
        pixels = torch.tensor(batch["pixels"])
        for i, bad in enumerate(batch["bad"]):
            if bad:
                pixels[i, 0, 0, 0] = float("nan")
        return {"pixel_values": pixels, "label": batch["label"]}

    rows = pixel_rows(8, 3)
    rows = rows.rename_column("pixel_values", "pixels").add_column("bad", [i == 5 for i in range(8)])
    trainer = AdaptTrainer(tiny_vit(), make_config(tmp_path), train_dataset=pixel_rows(16, 1),
                           target_dataset=pixel_rows(16, 2, labels=False),
                           eval_dataset={"source_val": pixel_rows(8, 4),
                                         "target_test": rows.with_transform(pixels_with_nan)})
    with pytest.raises(ValueError, match=r"eval set 'target_test': input 'pixel_values' holds NaN"):
        trainer.evaluate()


def test_nan_in_the_probed_rows_of_a_lazy_set_is_refused_before_training(tmp_path):
    from test_vision import tiny_vit

    def all_nan(batch):
        return {"pixel_values": torch.full((len(batch["label"]), 1, 16, 16), float("nan")), "label": batch["label"]}

    with pytest.raises(ValueError, match=r"non-finite logits on rows of eval dataset 'target_test'"):
        AdaptTrainer(tiny_vit(), make_config(tmp_path), train_dataset=pixel_rows(16, 1),
                     target_dataset=pixel_rows(16, 2, labels=False),
                     eval_dataset={"target_test": pixel_rows(8, 3).with_transform(all_nan)})


def test_nan_logits_in_evaluation_name_the_eval_set(domains, tmp_path):
    source, target, test = domains
    trainer = make_trainer(tiny_bert(), source, target, tmp_path, eval_dataset={"target_test": test})
    with torch.no_grad():
        trainer.adapt_model.task_model.classifier.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"eval set 'target_test': the model's (loss|logits) holds NaN"):
        trainer.evaluate()


# ---- experiment-level checks before the baseline trains -------------------------------------------------------


def tiny_splits(source_val_rows: int = 8, target_train_rows: int = 32) -> TransferSplits:
    return TransferSplits(source_train=token_dataset(32, seed=1), source_val=token_dataset(source_val_rows, seed=4),
                          target_train=token_dataset(target_train_rows, seed=2, shift=8, labels=False),
                          target_test=token_dataset(8, seed=3, shift=8), label_names=["a", "b"])


def experiment_config(tmp_path, **overrides):
    return make_config(tmp_path, method="dann", max_steps=2, **overrides)


def test_too_few_rows_for_the_proxy_a_distance_fail_before_the_baseline(tmp_path):
    with pytest.raises(ValueError, match=r"proxy A-distance needs at least 4 rows of source_val, which has 3 "
                                         r"\(pad_rows=8\).*Nothing was trained"):
        compare_with_source_only(tiny_bert, experiment_config(tmp_path), tiny_splits(source_val_rows=3), pad_rows=8)
    assert not (tmp_path / "out").exists()


def test_too_few_rows_for_a_validator_fail_before_the_baseline(tmp_path):
    config = experiment_config(tmp_path, label_free_validators=["iwv"])
    with pytest.raises(ValueError, match=r"validator 'iwv' needs at least 2 source_val and 2 target_train rows, "
                                         r"got 1 and 32"):
        compare_with_source_only(tiny_bert, config, tiny_splits(source_val_rows=1))
    assert not (tmp_path / "out").exists()


class RefusingHub(LocalHub):
    """A Hub that refuses the token, as the real one does for a wrong or read-only token."""

    def whoami(self, token=None, **kwargs):
        raise PermissionError("401 Unauthorized: invalid token")


def test_push_to_hub_with_a_refused_token_fails_before_the_baseline(tmp_path, monkeypatch):
    monkeypatch.setattr(transformers.utils.hub, "_hf_api", RefusingHub(tmp_path / "hub"))
    config = experiment_config(tmp_path, push_to_hub=True, hub_model_id="someone/never")
    with pytest.raises(HubAccessError, match=r"cannot take 'someone/never': PermissionError: 401.*Nothing was "
                                             "trained"):
        compare_with_source_only(tiny_bert, config, tiny_splits(), processing_class=tiny_tokenizer())
    assert not (tmp_path / "out").exists()


def test_push_to_hub_offline_fails_before_the_baseline(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(transformers.utils.hub, "_hf_api", None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    config = experiment_config(tmp_path, push_to_hub=True, hub_model_id="someone/never", hub_token="hf_x")
    with pytest.raises(HubAccessError, match="(?i)offline"):
        compare_with_source_only(tiny_bert, config, tiny_splits(), processing_class=tiny_tokenizer())
    assert not (tmp_path / "out").exists()


def test_push_to_hub_with_access_creates_the_repo_first_and_pushes_the_method(tmp_path, monkeypatch):
    hub = LocalHub(tmp_path / "hub")
    monkeypatch.setattr(transformers.utils.hub, "_hf_api", hub)
    config = experiment_config(tmp_path, push_to_hub=True, hub_model_id="someone/tiny")
    results = compare_with_source_only(tiny_bert, config, tiny_splits(), processing_class=tiny_tokenizer())
    assert [r["method"] for r in results["runs"]] == ["none", "dann"]
    assert [repo for repo, _ in hub.pushes] == ["someone/tiny"]
    pushed = load_file(hub.folder("someone/tiny") / "model.safetensors")
    saved = load_file(tmp_path / "out" / "dann" / "model.safetensors")
    assert pushed.keys() == saved.keys() and all(torch.equal(pushed[k], saved[k]) for k in saved)


def test_a_push_from_a_reused_folder_uploads_only_the_files_this_run_wrote(tmp_path, monkeypatch):
    hub = LocalHub(tmp_path / "hub")
    monkeypatch.setattr(transformers.utils.hub, "_hf_api", hub)
    stale = tmp_path / "out" / "dann"
    stale.mkdir(parents=True)
    for name in ("analysis.pt", "log_history.json", "notes.txt"):
        (stale / name).write_text("a previous run's file")
    (tmp_path / "out" / "results.json").write_text("{}")
    write_manifest(stale)  # the previous run's finished model folder
    config = experiment_config(tmp_path, push_to_hub=True, hub_model_id="someone/tiny")
    with pytest.raises(ValueError, match="holds a previous run's results"):
        compare_with_source_only(tiny_bert, config, tiny_splits(), processing_class=tiny_tokenizer())
    assert hub.pushes == []
    config = experiment_config(tmp_path, push_to_hub=True, hub_model_id="someone/tiny", overwrite_output_dir=True)
    compare_with_source_only(tiny_bert, config, tiny_splits(), processing_class=tiny_tokenizer())
    pushed = {p.relative_to(hub.folder("someone/tiny")).as_posix()
              for p in hub.folder("someone/tiny").rglob("*") if p.is_file()}
    assert {"model.safetensors", "config.json", "README.md", MANIFEST_NAME} <= pushed
    assert not pushed & {"analysis.pt", "log_history.json", "notes.txt", "results.json"}
