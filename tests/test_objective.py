"""The task objective hook: the default single-task one, the multi-task model's, and a registered one that
AdaptModel calls at its defined points."""

import pytest
import torch
from conftest import VOCAB, tiny_bert
from test_multitask import tiny_multitask

from hfadapt.modeling import objective as objective_module
from hfadapt.modeling.model import AdaptModel
from hfadapt.modeling.multitask import MultiTaskObjective
from hfadapt.modeling.objective import TaskObjective, objective_for, register_objective


def test_a_plain_classifier_gets_the_single_task_objective_and_a_multitask_model_its_own():
    single = objective_for(tiny_bert().config)
    assert type(single) is TaskObjective and single.label_columns == {}
    multi = objective_for(tiny_multitask({"rating": 0.5}).config)
    assert isinstance(multi, MultiTaskObjective) and multi.label_columns == {"rating": 4}
    inputs, task_labels = multi.split_labels({"input_ids": 1, "rating": 2})
    assert inputs == {"input_ids": 1} and task_labels == {"rating": 2}


def test_the_multitask_objective_weights_each_task_loss():
    model = AdaptModel(tiny_multitask({"rating": 0.25})).eval()
    ids = torch.randint(1, VOCAB, (4, 6))
    labels, rating = torch.tensor([0, 1, 1, -100]), torch.tensor([3, -100, 0, 2])
    out = model(input_ids=ids, labels=labels, rating=rating)
    logits = model.task_model(input_ids=ids).task_logits
    ce = torch.nn.functional.cross_entropy
    expected = ce(logits["sentiment"][:3], labels[:3]) + 0.25 * ce(logits["rating"][[0, 2, 3]], rating[[0, 2, 3]])
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)


class _DoubledWithPenalty(TaskObjective):
    """Twice the cross-entropy plus a constant penalty: shows each hook point is called."""

    def task_loss(self, outputs, labels, task_labels, cross_entropy):
        loss, parts = cross_entropy(outputs.logits, labels)
        return 2 * loss, parts

    def penalties(self, outputs):
        return {"constant": torch.tensor(0.5)}


def test_adapt_model_calls_the_objective_it_holds():
    ids = torch.randint(1, VOCAB, (4, 6))
    labels, domain = torch.tensor([0, 1, -100, -100]), torch.tensor([0, 0, 1, 1])
    plain = AdaptModel(tiny_bert()).train()(input_ids=ids, labels=labels, domain=domain)
    model = AdaptModel(tiny_bert(), objective=_DoubledWithPenalty()).train()
    out = model(input_ids=ids, labels=labels, domain=domain)
    assert out.components["loss_task"].item() == pytest.approx(2 * plain.loss.item(), rel=1e-6)
    assert out.components["loss_constant"].item() == 0.5
    assert out.loss.item() == pytest.approx(2 * plain.loss.item() + 0.5, rel=1e-6)


def test_a_registered_objective_is_picked_by_model_type():
    config = tiny_bert().config
    config.model_type = "hfadapt-test-objective"
    register_objective("hfadapt-test-objective", lambda cfg: _DoubledWithPenalty())
    try:
        assert isinstance(objective_for(config), _DoubledWithPenalty)
    finally:
        objective_module._OBJECTIVES.pop("hfadapt-test-objective")
