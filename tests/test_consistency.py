"""FixMatch, AdaMatch and mean teacher: losses against hand-computed values, the EMA teacher, training runs."""

import math
import types

import pytest
import torch
from conftest import tiny_bert, tiny_tokenizer, token_dataset
from helpers import make_config, trainable_state
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, TrainerCallback

from hfadapt import AdaptConfig, AdaptTrainer
from hfadapt.methods.adamatch import AdaMatchLoss, adamatch_pseudo_labels, distribution_alignment
from hfadapt.methods.fixmatch import FixMatchLoss, fixmatch_loss
from hfadapt.methods.mean_teacher import MeanTeacher, class_balance_loss, mean_teacher_loss


def softmax(row):
    e = [math.exp(v) for v in row]
    return [v / sum(e) for v in e]


def cross_entropy(row, label):
    return -math.log(softmax(row)[label])


# ---- losses on hand-made logits ------------------------------------------------------------------------------


def test_fixmatch_loss_is_the_masked_cross_entropy_over_all_target_rows():
    weak = torch.tensor([[3.0, 0.0], [0.0, 0.0], [0.0, 4.0]])  # max prob 0.953, 0.5, 0.982
    strong = torch.tensor([[1.0, 2.0], [0.5, 0.5], [2.0, -1.0]], requires_grad=True)
    loss, mask = fixmatch_loss(weak, strong, threshold=0.95)
    assert mask.tolist() == [True, False, True]
    expected = (cross_entropy([1.0, 2.0], 0) + cross_entropy([2.0, -1.0], 1)) / 3  # denominator: all 3 rows
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert strong.grad[1].abs().sum() == 0 and strong.grad[0].abs().sum() > 0

    nothing, mask = fixmatch_loss(weak, strong, threshold=0.99)
    assert not mask.any() and nothing.item() == 0.0 and nothing.requires_grad  # stays in the graph (DDP)
    with pytest.raises(ValueError, match="shape"):
        fixmatch_loss(weak, strong[:2])


def test_adamatch_relative_threshold_and_distribution_alignment_hand_computed():
    source = [[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
    target = [[0.0, 1.0], [1.5, 0.0], [0.0, 0.0], [0.8, 0.0]]
    p_s, p_t = [softmax(r) for r in source], [softmax(r) for r in target]
    mean_s = [sum(p[c] for p in p_s) / 3 for c in range(2)]
    mean_t = [sum(p[c] for p in p_t) / 4 for c in range(2)]
    aligned = [[p[c] * mean_s[c] / mean_t[c] for c in range(2)] for p in p_t]
    aligned = [[v / sum(row) for v in row] for row in aligned]
    threshold = 0.9 * sum(max(p) for p in p_s) / 3
    keep = [max(row) >= threshold for row in aligned]
    assert keep == [False, True, False, True]
    assert [max(p) >= threshold for p in p_t] == [True, True, False, False]  # alignment flips rows 0 and 3

    torch.testing.assert_close(
        distribution_alignment(torch.tensor(p_t), torch.tensor(p_s)), torch.tensor(aligned), rtol=1e-6, atol=1e-7)
    labels, mask, c = adamatch_pseudo_labels(torch.tensor(source), torch.tensor(target), tau=0.9)
    assert c.item() == pytest.approx(threshold, rel=1e-6)
    assert mask.tolist() == keep
    assert labels.tolist() == [max(range(2), key=row.__getitem__) for row in aligned]
    with pytest.raises(ValueError, match="source rows"):
        adamatch_pseudo_labels(torch.zeros(0, 2), torch.tensor(target))
    # without alignment: labels and confidences of the target probabilities as they are
    labels, mask, _ = adamatch_pseudo_labels(torch.tensor(source), torch.tensor(target), tau=0.9, align=False)
    assert mask.tolist() == [True, True, False, False]
    assert labels[:2].tolist() == [1, 0]


def test_adamatch_distribution_alignment_setting_reaches_the_loss(tmp_path):
    for align in (True, False):
        config = AdaptConfig(output_dir=str(tmp_path), method="adamatch", adamatch_distribution_alignment=align)
        assert AdaMatchLoss.from_config(config, feature_dim=8, num_domains=2, num_classes=2).distribution_alignment \
            is align


def test_mean_teacher_loss_is_the_thresholded_squared_probability_difference():
    student = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0]], requires_grad=True)
    teacher = torch.tensor([[4.0, 0.0], [0.0, 0.3], [0.0, 5.0]])  # max prob 0.982, 0.574, 0.993
    loss, mask = mean_teacher_loss(student, teacher, threshold=0.9)
    assert mask.tolist() == [True, False, True]
    rows = [sum((s - t) ** 2 for s, t in zip(softmax(a), softmax(b), strict=True)) / 2
            for a, b in ([[0.0, 1.0], [4.0, 0.0]], [[0.0, 0.0], [0.0, 5.0]])]
    assert loss.item() == pytest.approx(sum(rows) / 3, rel=1e-6)
    loss.backward()
    assert student.grad is not None and student.grad[1].abs().sum() == 0


# ---- binding, inputs and the teacher -------------------------------------------------------------------------


def token_batch():
    ids = torch.tensor([[1, 10, 11, 12, 13, 2, 0, 0]] * 2 + [[1, 40, 41, 42, 43, 44, 45, 2]] * 2)
    return {"input_ids": ids, "attention_mask": (ids != 0).long()}, torch.tensor([0, 0, 1, 1])


def test_class_balance_loss_is_the_summed_bce_to_uniform_scaled_by_the_mask_rate():
    # uniform predictions: each class's mean probability is 1/2, BCE(1/2, 1/2) = log 2, summed over 2 classes
    uniform = class_balance_loss(torch.zeros(3, 2), torch.tensor(1.0))
    torch.testing.assert_close(uniform, torch.tensor(2 * math.log(2)), rtol=1e-5, atol=0)
    # every row predicts class 0: p = (1, 0), BCE per class = -(1/2) log(1e-6) (French et al.'s epsilon), x mask 1/2
    collapsed = class_balance_loss(torch.tensor([[20.0, -20.0], [20.0, -20.0]]), torch.tensor(0.5))
    torch.testing.assert_close(collapsed, torch.tensor(0.5 * 2 * 0.5 * -math.log(1e-6)), rtol=1e-4, atol=0)


def test_mean_teacher_adds_the_weighted_class_balance_loss():
    student = tiny_bert(dropout=0.0)
    inputs, domain = token_batch()
    losses = {}
    for weight in (0.0, 0.5):
        torch.manual_seed(0)
        method = MeanTeacher(threshold=0.0, class_balance=weight, augmentation="dropout")
        method.bind(student, tiny_tokenizer())
        _, context = method.prepare_inputs(inputs, domain)
        losses[weight] = method(torch.zeros(4, 32), domain, torch.zeros(4, 2), **context)
    student_logits = student(**{k: v[domain == 1] for k, v in inputs.items()}).logits
    expected = losses[0.0].loss + 0.5 * class_balance_loss(student_logits, torch.tensor(1.0))
    torch.testing.assert_close(losses[0.5].loss, expected)
    assert "class_balance" in losses[0.5].metrics and "class_balance" not in losses[0.0].metrics


def test_prepare_inputs_keeps_the_batch_and_hands_the_target_rows_to_forward():
    method = FixMatchLoss(threshold=0.0)
    method.bind(tiny_bert(), tiny_tokenizer())
    inputs, domain = token_batch()
    same, context = method.prepare_inputs(inputs, domain)
    assert same is inputs
    assert torch.equal(context["target_inputs"]["input_ids"], inputs["input_ids"][2:])
    view = method.augment(context["target_inputs"])
    assert (view["input_ids"] == 3).sum().item() == 2  # mask:0.1 of 6 tokens per row -> 1 per row
    assert ((view["attention_mask"] == 0) & (context["target_inputs"]["attention_mask"] == 1)).sum().item() == 2


def test_bind_refuses_inputs_the_spec_cannot_augment():
    from test_vision import processor, tiny_vit

    with pytest.raises(ValueError, match="no image augmentation"):
        FixMatchLoss(augmentation="mask:0.1").bind(tiny_vit(), processor())
    with pytest.raises(ValueError, match="processing_class=tokenizer"):
        FixMatchLoss(augmentation="cutoff:0.1").bind(tiny_bert(), None)
    no_mask = types.SimpleNamespace(all_special_ids=[0, 1, 2], mask_token_id=None, pad_token_id=0)
    with pytest.raises(ValueError, match="no mask token"):
        AdaMatchLoss(augmentation="mask:0.1").bind(tiny_bert(), no_mask)
    FixMatchLoss(augmentation="dropout").bind(tiny_bert(), None)  # the dropout view needs no tokenizer
    with pytest.raises(ValueError, match="not bound"):
        FixMatchLoss().prepare_inputs(*token_batch())


def test_teacher_ema_after_two_steps_equals_the_hand_computed_average():
    student = tiny_bert()
    method = MeanTeacher(ema_decay=0.9)
    method.bind(student, tiny_tokenizer())
    weight = student.classifier.weight
    t0 = weight.detach().clone()
    assert all(not p.requires_grad for p in method.teacher.parameters())
    assert not [p for p in method.parameters() if p.requires_grad]
    method.set_progress(0.0)  # the trainer's train-begin call
    method.set_progress(0.0)  # and step 0's: no optimizer step yet, no update
    torch.testing.assert_close(method.teacher.classifier.weight, t0, rtol=0, atol=0)
    with torch.no_grad():
        weight.add_(1.0)
    s1 = weight.detach().clone()
    method.set_progress(0.25)
    with torch.no_grad():
        weight.mul_(-2.0)
    s2 = weight.detach().clone()
    method.set_progress(0.5)
    expected = 0.9 * (0.9 * t0 + 0.1 * s1) + 0.1 * s2
    torch.testing.assert_close(method.teacher.classifier.weight, expected, rtol=1e-6, atol=1e-6)
    # weights the student did not change stay bit-identical
    torch.testing.assert_close(method.teacher.bert.embeddings.word_embeddings.weight,
                               student.bert.embeddings.word_embeddings.weight, rtol=0, atol=0)


def test_mean_teacher_loss_trains_the_student_only():
    student = tiny_bert(dropout=0.1)
    method = MeanTeacher(threshold=0.0)
    method.bind(student, tiny_tokenizer())
    inputs, domain = token_batch()
    _, context = method.prepare_inputs(inputs, domain)
    out = method(torch.zeros(4, 32), domain, torch.zeros(4, 2), **context)
    assert out.loss.item() > 0 and out.metrics["mask_rate"].item() == 1.0
    out.loss.backward()
    assert student.classifier.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in method.teacher.parameters())
    assert not any(hook for m in method.teacher.modules() for hook in m._forward_pre_hooks.values())


# ---- training runs -------------------------------------------------------------------------------------------


def consistency_trainer(tmp_path, method, model=None, **overrides):
    source, target = token_dataset(32, seed=1), token_dataset(32, seed=2, shift=8, labels=False)
    values = dict(method=method, fixmatch_threshold=0.0, adamatch_tau=0.5, mean_teacher_threshold=0.0)
    values.update(overrides)
    return AdaptTrainer(model if model is not None else tiny_bert(dropout=0.1), make_config(tmp_path, **values),
                        train_dataset=source, target_dataset=target, processing_class=tiny_tokenizer())


@pytest.mark.parametrize("method", ["fixmatch", "adamatch", "mean_teacher", "dann+fixmatch"])
def test_training_changes_every_parameter_and_saves_a_plain_model(tmp_path, method):
    trainer = consistency_trainer(tmp_path, method)
    before = trainable_state(trainer)
    trainer.train()
    after = trainable_state(trainer)
    assert [n for n in before if torch.equal(before[n], after[n])] == []
    name = method.split("+")[-1]
    logged = [e for e in trainer.state.log_history if "loss" in e]
    assert len(logged) == 4 and all(f"loss_{name}" in e and f"{name}_mask_rate" in e for e in logged)
    if name != "mean_teacher":  # a pseudo-label cross-entropy of a near-uniform model: about log 2
        assert all(e[f"loss_{name}"] > 0.5 for e in logged)

    out = tmp_path / "saved"
    trainer.save_model(str(out))
    assert not any("teacher" in k or k.startswith("methods.") for k in load_file(str(out / "model.safetensors")))
    loaded = AutoModelForSequenceClassification.from_pretrained(out).eval()
    task = trainer.adapt_model.task_model.eval()
    batch, _ = token_batch()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, task(**batch).logits)


class StudentAfterEachStep(TrainerCallback):
    """Keeps the student's classifier weight after every optimizer step."""

    def __init__(self, model):
        self.model, self.seen = model, []

    def on_step_end(self, args, state, control, **kwargs):
        self.seen.append(self.model.classifier.weight.detach().clone())


def test_trainer_moves_the_teacher_once_per_optimizer_step_and_never_optimises_it(tmp_path):
    model = tiny_bert()
    trainer = consistency_trainer(tmp_path, "mean_teacher", model=model, max_steps=3, per_device_train_batch_size=4,
                                  gradient_accumulation_steps=2, mean_teacher_ema_decay=0.9)
    teacher = trainer.adapt_model.methods["mean_teacher"].teacher
    t0 = teacher.classifier.weight.detach().clone()
    steps = StudentAfterEachStep(model)
    trainer.add_callback(steps)
    trainer.train()
    optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert not optimised & {id(p) for p in teacher.parameters()}
    assert all(p.grad is None for p in teacher.parameters())
    s1, s2, _ = steps.seen  # updates follow steps 1 and 2; step 3's would come before a fourth step
    expected = 0.9 * (0.9 * t0 + 0.1 * s1) + 0.1 * s2
    torch.testing.assert_close(teacher.classifier.weight, expected, rtol=1e-5, atol=1e-6)


def test_resumed_run_ends_with_the_uninterrupted_teacher(tmp_path):
    def run(folder, resume=None):
        trainer = consistency_trainer(folder, "mean_teacher", model=tiny_bert(), save_strategy="steps", save_steps=2)
        trainer.train(resume_from_checkpoint=resume)
        return trainer.adapt_model.methods["mean_teacher"].teacher.state_dict()

    whole = run(tmp_path / "a")
    resumed = run(tmp_path / "b", resume=str(tmp_path / "a" / "out" / "checkpoint-2"))
    for name in whole:
        torch.testing.assert_close(resumed[name], whole[name], rtol=1e-5, atol=1e-6, msg=name)


def test_fixmatch_trains_a_tiny_vit_with_image_augmentation(tmp_path):
    from test_vision import image_dataset, lazy, processor, tiny_vit

    model = tiny_vit()
    source = lazy(image_dataset(24, 8, seed=1), model)
    target = lazy(image_dataset(24, 16, seed=2, labels=False, rgb=True), model)
    trainer = AdaptTrainer(model, make_config(tmp_path, method="fixmatch", fixmatch_threshold=0.0),
                           train_dataset=source, target_dataset=target, processing_class=processor())
    before = trainable_state(trainer)
    trainer.train()
    after = trainable_state(trainer)
    assert [n for n in before if torch.equal(before[n], after[n])] == []
    assert all(e["loss_fixmatch"] > 0 for e in trainer.state.log_history if "loss" in e)


# ---- configuration -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field, value, message", [
    ("fixmatch_threshold", 1.5, r"fixmatch_threshold must be in \[0, 1\], got 1.5"),
    ("adamatch_tau", 0.0, r"adamatch_tau must be in \(0, 1\], got 0.0"),
    ("mean_teacher_ema_decay", 1.0, r"mean_teacher_ema_decay must be in \[0, 1\), got 1.0"),
    ("mean_teacher_threshold", -0.1, r"mean_teacher_threshold must be in \[0, 1\), got -0.1"),
    ("fixmatch_weight", -1.0, "fixmatch_weight must be a finite number >= 0"),
    ("mean_teacher_augmentation", "mask:0.1+blur", "mean_teacher_augmentation='mask:0.1\\+blur': unknown augmentation"),
])
def test_config_rejects_bad_values_naming_the_field(tmp_path, field, value, message):
    with pytest.raises(ValueError, match=message):
        AdaptConfig(output_dir=str(tmp_path), method="fixmatch", **{field: value})


def test_adaptation_settings_keep_each_methods_own_fields(tmp_path):
    config = AdaptConfig(output_dir=str(tmp_path), method="dann+mean_teacher")
    settings = config.adaptation_settings()
    assert {"mean_teacher_weight", "mean_teacher_ema_decay", "mean_teacher_threshold",
            "mean_teacher_augmentation"} <= settings.keys()
    assert not [k for k in settings if k.startswith(("fixmatch_", "adamatch_"))]
    assert "alignment_balancing" in settings  # DANN's reversed gradient may be balanced
    fixmatch = AdaptConfig(output_dir=str(tmp_path), method="fixmatch").adaptation_settings()
    assert "alignment_balancing" not in fixmatch  # a bounded prediction loss: nothing to rebalance
    assert fixmatch["fixmatch_threshold"] == 0.95 and "mean_teacher_weight" not in fixmatch


# ---- the weak view without gradient ---------------------------------------------------------------------------


def test_merge_rows_puts_two_parts_back_in_batch_order_with_the_gradient_of_each():
    from transformers.modeling_outputs import SequenceClassifierOutput

    from hfadapt.modeling.rows import merge_rows, select_rows

    second_rows = torch.tensor([False, True, False, True])
    first = torch.tensor([[1.0], [3.0]], requires_grad=True)
    merged = merge_rows(first, torch.tensor([[2.0], [4.0]]), second_rows)
    assert merged.flatten().tolist() == [1.0, 2.0, 3.0, 4.0]
    merged.sum().backward()
    assert first.grad.flatten().tolist() == [1.0, 1.0]
    output = merge_rows(SequenceClassifierOutput(logits=torch.zeros(2, 2), hidden_states=(torch.zeros(2, 3, 1),)),
                        SequenceClassifierOutput(logits=torch.ones(2, 2), hidden_states=(torch.ones(2, 3, 1),)),
                        second_rows)
    assert output.logits[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0] and output.hidden_states[0].shape == (4, 3, 1)
    selected = select_rows({"input_ids": torch.arange(4), "other": 7}, second_rows)
    assert selected["input_ids"].tolist() == [1, 3] and selected["other"] == 7
    with pytest.raises(ValueError, match="cannot merge"):
        merge_rows(torch.zeros(3, 1), torch.zeros(2, 1), second_rows)


@pytest.mark.parametrize("method", ["adamatch", "fixmatch", "dann"])
def test_target_rows_run_apart_without_gradient_only_where_no_method_needs_it(method):
    """The loss and every gradient are the joint forward's (no dropout); the target rows' forward then runs without
    gradient, so the backward skips them. DANN back-propagates through the target features: one joint forward."""
    from hfadapt.methods.dann import DomainAdversarialLoss
    from hfadapt.modeling.model import AdaptModel

    inputs, domain = token_batch()
    labels = torch.tensor([0, 1, -100, -100])
    results = {}
    for apart in (False, True):
        torch.manual_seed(0)
        backbone = tiny_bert(dropout=0.0)
        head = {"adamatch": lambda: AdaMatchLoss(tau=0.5, augmentation="mask:0.2"),
                "fixmatch": lambda: FixMatchLoss(threshold=0.0, augmentation="mask:0.2"),
                "dann": lambda: DomainAdversarialLoss(feature_dim=32, dropout=0.0)}[method]()
        model = AdaptModel(backbone, torch.nn.ModuleDict({method: head}), target_rows_apart=apart).train()
        if method != "dann":
            head.bind(backbone, tiny_tokenizer())
        calls = []

        def record(module, args, kwargs, calls=calls):
            calls.append((len(kwargs["input_ids"]), torch.is_grad_enabled()))

        backbone.register_forward_pre_hook(record, with_kwargs=True)
        loss = model(labels=labels, domain=domain, **inputs).loss
        loss.backward()
        results[apart] = loss.detach(), {n: p.grad for n, p in backbone.named_parameters() if p.grad is not None}, calls
    (joint_loss, joint_grads, joint_calls), (loss, grads, calls) = results[False], results[True]
    torch.testing.assert_close(loss, joint_loss)
    assert grads.keys() == joint_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, joint_grads[name], rtol=1e-4, atol=1e-6)
    strong = [(2, True)] if method != "dann" else []
    assert joint_calls == [(4, True), *strong]
    assert calls == ([(4, True)] if method == "dann" else [(2, True), (2, False), *strong])
