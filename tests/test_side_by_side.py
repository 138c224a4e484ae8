"""The source-only baseline trained in a second process beside the method (compare_with_source_only's side_by_side)."""

import functools
import os
import pickle

import pytest
import torch
from helpers import make_config
from tiny_models import tiny_bert, token_dataset
from transformers import AutoModelForSequenceClassification

from hfadapt.cli.runner import text_model_factory
from hfadapt.data.splits import TransferSplits
from hfadapt.evaluation import experiment
from hfadapt.evaluation.side_by_side import second_process, thread_split, why_not_side_by_side
from hfadapt.utils.peft_utils import plain_state_dict


@pytest.fixture()
def splits():
    return TransferSplits(source_train=token_dataset(32, seed=1), source_val=token_dataset(16, seed=4),
                          target_train=token_dataset(32, seed=2, shift=8, labels=False),
                          target_test=token_dataset(16, seed=3, shift=8), label_names=["neg", "pos"])


def bert_in_this_process_only(pid: int):
    """A tiny BERT in the process ``pid``; anywhere else (the baseline's process) an error."""
    if os.getpid() != pid:
        raise RuntimeError("no model outside the first process")
    return tiny_bert()


def process_index_of(config) -> int:
    """What the baseline's trainer reads first of its configuration's accelerate state."""
    return config.process_index


SCORES = ("method", "source_val_accuracy", "target_accuracy", "target_macro_f1", "train_steps", "source_val_curve")


def test_side_by_side_trains_the_same_two_models_as_one_after_the_other(tmp_path, splits, monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # the split needs two threads, whatever this machine has
    results = {}
    for side_by_side in (False, True):
        config = make_config(tmp_path, method="dann", eval_strategy="steps", eval_steps=2,
                             output_dir=str(tmp_path / str(side_by_side)))
        results[side_by_side] = experiment.compare_with_source_only(tiny_bert, config, splits,
                                                                    side_by_side=side_by_side)
    for apart, together in zip(results[False]["runs"], results[True]["runs"], strict=True):
        assert {k: apart[k] for k in SCORES} == {k: together[k] for k in SCORES}
    for run in ("source_only", "dann"):
        weights = [plain_state_dict(AutoModelForSequenceClassification.from_pretrained(tmp_path / side / run))
                   for side in ("False", "True")]
        assert all(torch.allclose(weights[0][k], weights[1][k], atol=1e-6) for k in weights[0])
    card = (tmp_path / "True" / "dann" / "README.md").read_text()
    assert "| source-only baseline |" in card  # the method's card waited for the baseline's scores
    assert card == (tmp_path / "False" / "dann" / "README.md").read_text()
    assert torch.get_num_threads() == 2


def test_a_failed_baseline_keeps_the_method_and_raises_its_error(tmp_path, splits, monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    config = make_config(tmp_path, method="dann", output_dir=str(tmp_path / "run"))
    make_model = functools.partial(bert_in_this_process_only, os.getpid())
    with pytest.raises(RuntimeError, match="no model outside the first process"):
        experiment.compare_with_source_only(make_model, config, splits, side_by_side=True)
    card = (tmp_path / "run" / "dann" / "README.md").read_text()  # the method's model and card are saved
    assert (tmp_path / "run" / "dann" / "config.json").is_file() and "| source-only baseline |" not in card
    assert "No source-only baseline was trained in the same run" in card
    assert not (tmp_path / "run" / "results.json").exists()


def test_the_second_process_gets_its_arguments_as_they_were_when_it_was_started(tmp_path):
    from accelerate.state import AcceleratorState

    rows = [1, 2, 3]
    with second_process(1, dict, rows=rows) as call:
        rows.clear()  # the pool's own thread would pickle the arguments after this
    assert call.get() == {"rows": [1, 2, 3]}

    # the race the method's configuration ran into: building a TrainingArguments resets accelerate's shared state,
    # which the baseline's configuration holds, while the pool was still to pickle it
    config = make_config(tmp_path)
    try:
        with second_process(1, process_index_of, config=config) as call:
            AcceleratorState._reset_state(reset_partial_state=True)
        assert call.get() == 0
    finally:
        make_config(tmp_path)  # accelerate's state set up again for the tests after this one


def test_why_not_side_by_side_names_each_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    config = make_config(tmp_path, method="self_training")
    both = ["none", "self_training"]
    assert why_not_side_by_side(tiny_bert, config, both) is None
    assert "no baseline" in why_not_side_by_side(tiny_bert, config, ["self_training"])
    two_stage = make_config(tmp_path, method="self_training", adapt_from_source_only=True)
    assert "adapt_from_source_only" in why_not_side_by_side(tiny_bert, two_stage, both)
    assert "another process" in why_not_side_by_side(lambda: tiny_bert(), config, both)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert "one thread" in why_not_side_by_side(tiny_bert, config, both)


def test_thread_split_and_a_text_factory_that_pickles():
    assert [thread_split(n) for n in (2, 3, 16)] == [(1, 1), (2, 1), (8, 8)]
    factory = pickle.loads(pickle.dumps(text_model_factory("some/model", ["neg", "pos"], 0.5)))
    assert factory.args == ("some/model", ["neg", "pos"], 0.5)


def test_threads_come_back_once_the_other_run_has_ended(monkeypatch):
    from hfadapt.evaluation.side_by_side import ThreadsBackWhenDone

    class Other:
        done = False

        def ready(self):
            return self.done

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    other = Other()
    callback = ThreadsBackWhenDone(other, threads=4)
    callback.on_step_begin(None, None, None)
    assert calls == []  # the baseline still trains: this run keeps its half
    other.done = True
    callback.on_step_begin(None, None, None)
    callback.on_step_begin(None, None, None)
    assert calls == [4]  # once, at the first step after the baseline ended
