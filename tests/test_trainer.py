import datasets
import pytest
import torch
from conftest import SEQ, tiny_bert, tiny_tokenizer, token_dataset
from helpers import make_config, make_trainer, trainable_state
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from hfadapt import AdaptTrainer
from hfadapt.methods import AlignmentOutput
from hfadapt.methods.grl import GRL_SCHEDULES, grl_warm_start


@pytest.mark.parametrize("method", ["dann", "mmd", "dann+mmd", "cdan", "jan", "coral", "mcc", "entropy", "im", "iw",
                                    "iw+dann", "fixmatch", "adamatch", "mean_teacher", "dann+fixmatch"])
def test_every_trainable_parameter_changes(domains, tmp_path, method):
    source, target, _ = domains
    # the consistency methods augment target tokens and need the tokenizer's special tokens
    augments = {"fixmatch", "adamatch", "mean_teacher"} & set(method.split("+"))
    trainer = make_trainer(tiny_bert(), source, target, tmp_path, method=method,
                           processing_class=tiny_tokenizer() if augments else None)
    before = trainable_state(trainer)
    first = method.split("+")[0]
    if first in ("dann", "cdan"):
        assert any(n.startswith(f"methods.{first}.discriminator") for n in before)
    trainer.train()
    after = trainable_state(trainer)
    unchanged = [n for n in before if torch.equal(before[n], after[n])]
    assert unchanged == []
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 4 and all("loss_task" in e for e in logged)
    for name in method.split("+"):
        assert all(f"loss_{name}" in e for e in logged)
    for adversarial in ("dann", "cdan"):
        if adversarial in method:
            assert all(f"{adversarial}_accuracy" in e and f"{adversarial}_lambda" in e for e in logged)


def test_source_only_ignores_target_rows(domains, tmp_path):
    source, target, _ = domains
    trainer = make_trainer(tiny_bert(), source, target, tmp_path, method="none")
    trainer.train()
    assert trainer.adapt_model.methods.keys() == set()
    other_target = token_dataset(32, seed=99, shift=4, labels=False)
    trainer2 = make_trainer(tiny_bert(), source, other_target, tmp_path, method="none")
    trainer2.train()
    a, b = trainable_state(trainer), trainable_state(trainer2)
    assert all(torch.equal(a[n], b[n]) for n in a)


def test_source_only_is_paired_with_a_method_of_zero_weight(domains, tmp_path):
    source, target, _ = domains
    runs = {}
    for name, overrides in {"none": {"method": "none"}, "skip": {"method": "none", "source_only_full_batch": False},
                            "mmd0": {"method": "mmd", "mmd_weight": 0.0}}.items():
        trainer = make_trainer(tiny_bert(dropout=0.1), source, target, tmp_path / name, **overrides)
        trainer.train()
        runs[name] = trainable_state(trainer)
    task = [n for n in runs["none"] if n.startswith("task_model.")]
    assert all(torch.equal(runs["none"][n], runs["mmd0"][n]) for n in task)  # same forward, same dropout masks
    assert not all(torch.equal(runs["none"][n], runs["skip"][n]) for n in task)  # target rows skipped: other masks


def test_batches_keep_the_source_target_proportion(domains, tmp_path):
    source, target, _ = domains
    trainer = make_trainer(tiny_bert(), source, target, tmp_path, per_device_train_batch_size=8, target_fraction=0.25)
    loader = trainer.get_train_dataloader()
    batches = list(loader)
    assert len(batches) == len(source) // 6
    for batch in batches:
        assert batch["domain"].tolist() == [0] * 6 + [1] * 2
        assert (batch["labels"][6:] == -100).all() and (batch["labels"][:6] >= 0).all()


def test_gradient_accumulation_1x8_equals_2x4(domains, tmp_path):
    # Plain SGD makes the update linear in the gradient, so this compares the accumulated gradients themselves.
    source, target, _ = domains
    states = []
    for batch_size, accumulation in [(8, 1), (4, 2)]:
        trainer = make_trainer(
            tiny_bert(), source, target, tmp_path, method="dann", max_steps=3,
            per_device_train_batch_size=batch_size, gradient_accumulation_steps=accumulation,
            discriminator_dropout=0.0, optim="sgd", learning_rate=0.1, max_grad_norm=0.0,
        )
        trainer.train()
        states.append(trainable_state(trainer))
    a, b = states
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=2e-5, rtol=1e-4, msg=name)


def test_grl_coefficient_set_once_per_optimizer_step(domains, tmp_path):
    source, target, test = domains
    trainer = make_trainer(tiny_bert(), source, target, tmp_path, eval_dataset=test, method="dann", max_steps=4,
                           per_device_train_batch_size=4, gradient_accumulation_steps=2,
                           eval_strategy="steps", eval_steps=2, grl_max_lambda=1.0)
    dann = trainer.adapt_model.methods["dann"]
    seen = []
    dann.discriminator.register_forward_pre_hook(lambda module, args: seen.append(dann.grl.coefficient))
    trainer.train()
    expected = [grl_warm_start(step / 4) for step in range(4)]
    assert seen == [value for value in expected for _ in range(2)]  # same value for both micro-batches
    assert any("eval_loss" in e for e in trainer.state.log_history)  # evaluation ran in between
    assert dann.grl.coefficient == pytest.approx(expected[-1])  # and did not advance it


@pytest.mark.parametrize("schedule", ["warm_start", "constant", "cosine_ramp"])
def test_loss_weights_of_non_adversarial_methods_follow_the_weight_schedule(domains, tmp_path, schedule):
    source, target, _ = domains
    trainer = make_trainer(tiny_bert(), source, target, tmp_path, method="dann+mmd", mmd_weight=0.5,
                           weight_schedule=schedule, grl_max_lambda=1.0, alignment_balancing="fixed")
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    factors = [GRL_SCHEDULES[schedule](step / 4) for step in range(4)]
    assert [e["mmd_weight"] for e in logged] == pytest.approx([0.5 * f for f in factors], abs=1e-4)
    assert [e["dann_weight"] for e in logged] == [1.0] * 4  # DANN is scheduled by its GRL coefficient
    assert ([e["dann_lambda"] for e in logged]
            == pytest.approx([grl_warm_start(step / 4) for step in range(4)], abs=1e-4))


@pytest.mark.parametrize(("method", "settings", "acted"), [
    ("dann+mmd", {}, "loss_mmd"),
    # the pseudo-labellers, with thresholds that let a tiny model's predictions through from the first step
    ("self_training", {"self_training_warmup": 0.0}, "self_training_mask_rate"),
    ("fixmatch", {"fixmatch_threshold": 0.0}, "fixmatch_mask_rate"),
    ("adamatch", {}, "adamatch_mask_rate"),
    ("mean_teacher", {"mean_teacher_threshold": 0.0}, "mean_teacher_mask_rate"),
])
def test_permuted_target_labels_give_bit_identical_weights(tmp_path, method, settings, acted):
    source = token_dataset(32, seed=1)
    target = token_dataset(32, seed=2, shift=8)  # carries labels
    permuted = target.remove_columns("label").add_column("label", list(reversed(target["label"])))
    states = []
    for tgt in (target, permuted):
        trainer = make_trainer(tiny_bert(), source, tgt, tmp_path, processing_class=tiny_tokenizer(), method=method,
                               **settings)  # the tokenizer: the consistency methods' augmentations change tokens
        trainer.train()
        states.append(trainable_state(trainer))
        logged = [e for e in trainer.state.log_history if "loss" in e]
        assert any(e.get(acted, 0.0) > 0.0 for e in logged), logged  # the target rows did reach the method
    assert all(torch.equal(states[0][n], states[1][n]) for n in states[0])


def test_saved_model_is_the_plain_task_model(domains, tmp_path):
    source, target, test = domains
    trainer = make_trainer(tiny_bert(), source, target, tmp_path, method="dann")
    trainer.train()
    out = tmp_path / "saved"
    trainer.save_model(str(out))
    keys = load_file(str(out / "model.safetensors")).keys()
    assert not any("discriminator" in k or k.startswith("methods.") for k in keys)
    loaded = AutoModelForSequenceClassification.from_pretrained(out).eval()
    task = trainer.adapt_model.task_model.eval()
    batch = {"input_ids": torch.tensor(test["input_ids"]), "attention_mask": torch.tensor(test["attention_mask"])}
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, task(**batch).logits)


def test_non_finite_loss_stops_training_with_a_clear_error(domains, tmp_path):
    source, target, _ = domains
    trainer = make_trainer(tiny_bert(), source, target, tmp_path, method="mmd")
    trainer.adapt_model.methods["mmd"].forward = lambda f, d, logits=None: AlignmentOutput(torch.tensor(float("nan")))
    with pytest.raises(FloatingPointError, match="loss_mmd"):
        trainer.train()


# ---- bad input fails in __init__, before training -------------------------------------------------------


def test_missing_label_column_in_source(domains, tmp_path):
    source, target, _ = domains
    with pytest.raises(ValueError, match="no label column"):
        make_trainer(tiny_bert(), source.remove_columns("label"), target, tmp_path)


def test_untokenised_text_dataset(tmp_path):
    text = datasets.Dataset.from_dict({"text": ["good", "bad"], "label": [1, 0]})
    with pytest.raises(ValueError, match="no model input column.*Tokenise"):
        make_trainer(tiny_bert(), text, token_dataset(4, 2, labels=False), tmp_path)


def test_empty_target(domains, tmp_path):
    source, target, _ = domains
    with pytest.raises(ValueError, match="target_dataset is empty"):
        make_trainer(tiny_bert(), source, target.select([]), tmp_path)


def test_eval_labels_the_source_lacks(domains, tmp_path):
    source, target, _ = domains
    three_class_test = token_dataset(12, seed=5, num_labels=3)
    with pytest.raises(ValueError, match="labels \\[2\\] that the source training set lacks"):
        make_trainer(tiny_bert(num_labels=3), source, target, tmp_path, eval_dataset={"target": three_class_test})


def test_source_labels_outside_the_model(tmp_path):
    source = token_dataset(16, seed=1, num_labels=3)
    with pytest.raises(ValueError, match="num_labels=2"):
        make_trainer(tiny_bert(num_labels=2), source, token_dataset(8, 2, labels=False), tmp_path)


def test_class_names_that_differ(domains, tmp_path):
    source, target, test = domains
    source = source.cast_column("label", datasets.ClassLabel(names=["neg", "pos"]))
    test = test.cast_column("label", datasets.ClassLabel(names=["pos", "neg"]))
    with pytest.raises(ValueError, match="names its classes"):
        make_trainer(tiny_bert(), source, target, tmp_path, eval_dataset={"target": test})


def test_wrong_argument_types(domains, tmp_path):
    source, target, _ = domains
    from transformers import TrainingArguments

    with pytest.raises(TypeError, match="AdaptConfig"):
        AdaptTrainer(tiny_bert(), TrainingArguments(str(tmp_path)), train_dataset=source, target_dataset=target)
    with pytest.raises(TypeError, match="PreTrainedModel"):
        AdaptTrainer(torch.nn.Linear(2, 2), make_config(tmp_path), train_dataset=source, target_dataset=target)


def test_batch_too_small_for_both_domains(domains, tmp_path):
    source, target, _ = domains
    with pytest.raises(ValueError, match="raise per_device_train_batch_size"):
        make_trainer(tiny_bert(), source, target, tmp_path, per_device_train_batch_size=1)


def test_fixed_length_inputs_need_no_tokenizer(domains, tmp_path):
    source, target, _ = domains
    assert len(source[0]["input_ids"]) == SEQ
    make_trainer(tiny_bert(), source, target, tmp_path).train()


def varied_lengths(ds: datasets.Dataset, seed: int) -> datasets.Dataset:
    """``ds`` with each row cut to a random length in [3, SEQ]."""
    cuts = torch.randint(3, SEQ + 1, (len(ds),), generator=torch.Generator().manual_seed(seed)).tolist()
    return ds.map(lambda row, i: {k: row[k][: cuts[i]] for k in ("input_ids", "attention_mask")}, with_indices=True)


def test_group_by_length_keeps_the_proportion_and_pads_less(tmp_path):
    from conftest import tiny_tokenizer

    source, target = varied_lengths(token_dataset(96, seed=1), 0), varied_lengths(token_dataset(96, 2, 8, False), 1)
    padded = {}
    for strategy in ("random", "group_by_length"):
        config = make_config(tmp_path, per_device_train_batch_size=8, max_steps=2, train_sampling_strategy=strategy)
        trainer = AdaptTrainer(tiny_bert(), config, train_dataset=source, target_dataset=target,
                               processing_class=tiny_tokenizer())
        batches = list(trainer.get_train_dataloader())
        assert len(batches) == len(source) // 4
        assert all(b["domain"].tolist() == [0] * 4 + [1] * 4 for b in batches)
        padded[strategy] = sum(b["input_ids"].numel() for b in batches)
        trainer.train()
    assert padded["group_by_length"] < 0.9 * padded["random"]


def test_sampling_strategies_that_mix_domains_are_refused(tmp_path):
    with pytest.raises(ValueError, match="fixed proportion"):
        make_config(tmp_path, train_sampling_strategy="sequential")
