"""Class-balanced self-training (pseudo-labels with a warm-up) and early stopping on source validation."""

import math

import pytest
import torch
from conftest import tiny_bert, token_dataset
from helpers import make_trainer, trainable_state

from hfadapt import AdaptConfig
from hfadapt.evaluation.experiment import source_val_curve, train_and_evaluate
from hfadapt.methods.self_training import SelfTrainingLoss, class_thresholds, warmup_ramp
from hfadapt.trainer.callbacks import MinStepsEarlyStoppingCallback


def cross_entropy(row, label):
    e = [math.exp(v) for v in row]
    return -math.log(e[label] / sum(e))


def test_warmup_ramp_is_zero_then_linear_then_one():
    assert [warmup_ramp(p, 0.1) for p in (0.0, 0.1, 0.15, 0.2, 0.9)] == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0])
    assert warmup_ramp(0.0, 0.0) == 1.0


def test_class_thresholds_are_per_class_quantiles():
    queue = torch.tensor([[0.6, 0.7, 0.8, 0.9], [0.95, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    filled = torch.tensor([4, 1, 0])
    thresholds = class_thresholds(queue, filled, fraction=0.5)
    assert thresholds.tolist() == pytest.approx([0.75, 0.95, 0.0])  # median of class 0; one value; empty


def test_loss_keeps_the_most_confident_half_of_each_predicted_class():
    method = SelfTrainingLoss(num_domains=2, num_classes=2, class_fraction=0.5, warmup=0.0, queue_size=8)
    # history: class 0 confidences 0.6 / 0.9, class 1 confidences 0.7 / 0.8 -> thresholds 0.75 and 0.75
    method.remember(torch.tensor([0.6, 0.9, 0.7, 0.8]), torch.tensor([0, 0, 1, 1]))
    logits = torch.tensor([[9.0, 0.0],  # source row: ignored
                           [math.log(4.0), 0.0],  # p = 0.8 for class 0: kept
                           [math.log(2.0), 0.0],  # p = 0.667 for class 0: below its class's threshold
                           [0.0, math.log(9.0)],  # p = 0.9 for class 1: kept
                           [0.0, math.log(2.0)]], requires_grad=True)  # p = 0.667 for class 1: dropped
    domain = torch.tensor([0, 1, 1, 1, 1])
    out = method(torch.zeros(5, 3), domain, logits)
    expected = (cross_entropy([math.log(4.0), 0.0], 0) + cross_entropy([0.0, math.log(9.0)], 1)) / 4
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)
    assert out.metrics["mask_rate"].item() == pytest.approx(0.5)
    out.loss.backward()
    assert logits.grad[0].abs().sum() == 0 and logits.grad[2].abs().sum() == 0 and logits.grad[1].abs().sum() > 0
    assert int(method.filled[0]) == 4 and int(method.filled[1]) == 4  # the batch's predictions were queued


def test_distribution_alignment_moves_the_pseudo_labels_towards_the_source_marginal():
    """Source rows at p = (0.5, 0.5), target rows leaning to class 0 (mean p = (0.5875, 0.4125)): aligned, the row at
    (0.55, 0.45) becomes (0.55 / 0.5875, 0.45 / 0.4125), normalised, and its pseudo-label flips to class 1."""
    target = [[0.9, 0.1], [0.55, 0.45], [0.7, 0.3], [0.2, 0.8]]
    logits = torch.tensor([[0.0, 0.0], [0.0, 0.0]] + [[math.log(a), math.log(b)] for a, b in target])
    domain = torch.tensor([0, 0, 1, 1, 1, 1])

    def run(align):
        method = SelfTrainingLoss(num_domains=2, num_classes=2, class_fraction=1.0, warmup=0.0,
                                  distribution_alignment=align)
        return method, method(torch.zeros(6, 3), domain, logits)

    mean = [sum(row[c] for row in target) / 4 for c in (0, 1)]
    aligned = [[row[c] * 0.5 / mean[c] for c in (0, 1)] for row in target]
    aligned = [[v / sum(row) for v in row] for row in aligned]
    labels = {False: [0, 0, 0, 1], True: [0, 1, 0, 1]}
    for align in (False, True):
        method, out = run(align)
        pairs = zip(target, labels[align], strict=True)
        expected = sum(cross_entropy([math.log(a), math.log(b)], y) for (a, b), y in pairs) / 4
        assert out.loss.item() == pytest.approx(expected, rel=1e-6)  # the cross-entropy of the unaligned logits
    assert int(method.filled[0]) == 2 and int(method.filled[1]) == 2  # the aligned predictions are queued
    queued = sorted(method.queue[0, :2].tolist() + method.queue[1, :2].tolist())
    assert queued == pytest.approx(sorted(max(row) for row in aligned), rel=1e-6)
    assert aligned[1][1] > 0.5  # the flipped row, by hand


def test_threshold_floor_and_warmup():
    method = SelfTrainingLoss(num_domains=2, num_classes=2, threshold=0.85, class_fraction=1.0, warmup=0.2)
    logits = torch.tensor([[math.log(4.0), 0.0], [0.0, math.log(9.0)]])
    domain = torch.tensor([1, 1])
    method.set_progress(0.1)  # still warming up: no loss, but the queue fills
    assert method(torch.zeros(2, 3), domain, logits).loss.item() == 0.0
    method.set_progress(0.3)  # half-way up the ramp
    out = method(torch.zeros(2, 3), domain, logits)
    assert out.metrics["mask_rate"].item() == pytest.approx(0.5)  # 0.8 < 0.85 floor
    assert out.loss.item() == pytest.approx(0.5 * cross_entropy([0.0, math.log(9.0)], 1) / 2, rel=1e-6)


def test_the_queue_wraps_around():
    method = SelfTrainingLoss(num_domains=2, num_classes=2, queue_size=3)
    method.remember(torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5]), torch.tensor([0, 0, 0, 0, 0]))
    assert int(method.filled[0]) == 3 and sorted(method.queue[0].tolist()) == pytest.approx([0.3, 0.4, 0.5])
    method.remember(torch.tensor([0.6]), torch.tensor([0]))
    assert sorted(method.queue[0].tolist()) == pytest.approx([0.4, 0.5, 0.6])


@pytest.mark.parametrize("bad", [{"self_training_class_fraction": 0.0}, {"self_training_threshold": 1.0},
                                 {"self_training_warmup": 0.6}, {"self_training_queue_size": 0}])
def test_bad_settings_name_the_field(tmp_path, domains, bad):
    source, target, _ = domains
    with pytest.raises(ValueError, match=next(iter(bad))):
        make_trainer(tiny_bert(), source, target, tmp_path, method="self_training", **bad)


@pytest.mark.parametrize("align", [False, True])
def test_self_training_trains_and_logs(domains, tmp_path, align):
    source, target, _ = domains
    trainer = make_trainer(tiny_bert(), source, target, tmp_path, method="self_training", self_training_warmup=0.0,
                           self_training_distribution_alignment=align)
    assert trainer.adapt_model.methods["self_training"].distribution_alignment is align
    before = trainable_state(trainer)
    trainer.train()
    after = trainable_state(trainer)
    assert [n for n in before if torch.equal(before[n], after[n])] == []
    logged = [e for e in trainer.state.log_history if "loss" in e]
    assert all("loss_self_training" in e and "self_training_mask_rate" in e for e in logged)
    assert "methods.self_training.queue" in trainer.adapt_model.state_dict()  # resumes with its history


def test_early_stopping_needs_a_best_model_metric(tmp_path):
    with pytest.raises(ValueError, match="load_best_model_at_end"):
        AdaptConfig(str(tmp_path), method="none", early_stopping_patience=2)


class _Control:
    should_training_stop = False


class _State:
    def __init__(self, step, best):
        self.global_step, self.best_metric = step, best


def test_early_stopping_waits_for_min_steps(tmp_path):
    args = AdaptConfig(str(tmp_path), method="none", eval_strategy="steps", save_strategy="steps",
                       load_best_model_at_end=True, metric_for_best_model="source_val_accuracy")
    callback = MinStepsEarlyStoppingCallback(early_stopping_patience=1, min_steps=20)
    control = _Control()
    callback.on_evaluate(args, _State(10, 0.9), control, {"eval_source_val_accuracy": 0.8})  # worse, too early
    assert not control.should_training_stop
    callback.on_evaluate(args, _State(20, 0.9), control, {"eval_source_val_accuracy": 0.8})  # worse, late enough
    assert control.should_training_stop


def test_early_stopping_keeps_a_stop_it_did_not_request(tmp_path):
    """max_steps below min_steps: the run ends at max_steps (the trainer's stop), not at the epoch's end."""
    args = AdaptConfig(str(tmp_path), method="none", eval_strategy="steps", save_strategy="steps",
                       load_best_model_at_end=True, metric_for_best_model="source_val_accuracy")
    callback = MinStepsEarlyStoppingCallback(early_stopping_patience=3, min_steps=300)
    control = _Control()
    control.should_training_stop = True  # set by transformers' DefaultFlowCallback at max_steps
    callback.on_evaluate(args, _State(2, 0.9), control, {"eval_source_val_accuracy": 0.95})
    assert control.should_training_stop


def test_early_stopping_state_rebuilds_the_callback_with_its_min_steps_and_counter(tmp_path):
    """What a checkpoint stores is what Trainer rebuilds the callback from on resume (``type(cb)(**args)``)."""
    args = AdaptConfig(str(tmp_path), method="none", eval_strategy="steps", save_strategy="steps",
                       load_best_model_at_end=True, metric_for_best_model="source_val_accuracy")
    callback = MinStepsEarlyStoppingCallback(early_stopping_patience=3, min_steps=300)
    callback.on_evaluate(args, _State(100, 0.9), _Control(), {"eval_source_val_accuracy": 0.8})
    rebuilt = MinStepsEarlyStoppingCallback.from_state(callback.state())
    assert (rebuilt.early_stopping_patience, rebuilt.min_steps, rebuilt.early_stopping_patience_counter) == (3, 300, 1)
    assert args.restore_callback_states_from_checkpoint  # AdaptConfig's default: resumed runs restore it


def test_train_and_evaluate_selects_on_source_validation_only(tmp_path):
    from hfadapt.data.splits import TransferSplits

    splits = TransferSplits(source_train=token_dataset(32, seed=1), source_val=token_dataset(16, seed=4),
                            target_train=token_dataset(32, seed=2, shift=8, labels=False),
                            target_test=token_dataset(16, seed=3, shift=8), label_names=["a", "b"])
    config = AdaptConfig(str(tmp_path / "run"), method="none", per_device_train_batch_size=8, max_steps=12,
                         learning_rate=1e-3, use_cpu=True, report_to="none", disable_tqdm=True, seed=0,
                         eval_strategy="steps", eval_steps=2, save_strategy="steps", save_steps=2,
                         save_total_limit=1, load_best_model_at_end=True, metric_for_best_model="source_val_accuracy",
                         early_stopping_patience=2, early_stopping_min_steps=4)
    run = train_and_evaluate(tiny_bert, config, splits, save=False)
    curve = run["source_val_curve"]
    assert [step for step, _ in curve] == list(range(2, run["train_steps"] + 1, 2))  # source validation, every 2
    assert 4 <= run["train_steps"] <= 12
    assert run["source_val_accuracy"] == pytest.approx(max(acc for _, acc in curve))  # the best one was kept
    assert run["source_val_rows"] == 16  # what a lost-source-task warning weighs the accuracy by
    assert 0.0 <= run["target_accuracy"] <= 1.0


def test_source_val_curve_skips_the_repeated_final_evaluation():
    history = [{"step": 2, "eval_source_val_accuracy": 0.5}, {"step": 4, "eval_source_val_accuracy": 0.7},
               {"step": 4, "eval_source_val_accuracy": 0.6}, {"step": 4, "eval_target_test_accuracy": 0.9}]
    assert source_val_curve(history) == [[2, 0.5], [4, 0.7]]
