"""Model fusion: prediction ensembles, model soups, WiSE-FT, the weight EMA during training and `hfadapt fuse`."""

import pytest
import torch
from conftest import VOCAB, tiny_bert, tiny_tokenizer, token_dataset
from helpers import make_config, make_trainer
from transformers import (
    AutoModelForImageClassification,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertForSequenceClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    ViTConfig,
    ViTForImageClassification,
)

from hfadapt.cli import main as cli
from hfadapt.fusion import (
    EnsembleForClassification,
    WeightEMACallback,
    average_state_dicts,
    greedy_soup,
    uniform_soup,
    wise_ft,
)


def float_params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}


def tiny_vit(seed: int) -> ViTForImageClassification:
    torch.manual_seed(seed)
    return ViTForImageClassification(ViTConfig(image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=1,
                                               num_attention_heads=2, intermediate_size=37, num_labels=3))


# ---- weight averaging ------------------------------------------------------------------------------------------


def test_uniform_soup_is_the_mean_of_the_parameters():
    a, b = tiny_bert(seed=0), tiny_bert(seed=1)
    before_a, before_b = float_params(a), float_params(b)
    soup = uniform_soup([a, b])
    assert type(soup) is BertForSequenceClassification and soup is not a
    got = float_params(soup)
    assert got.keys() == before_a.keys()
    assert [k for k in got if not torch.allclose(got[k], (before_a[k] + before_b[k]) / 2, atol=1e-7)] == []
    assert all(torch.equal(before_a[k], v) for k, v in float_params(a).items())  # inputs unchanged
    weighted = float_params(uniform_soup([a, b], weights=[3, 1]))
    key = "classifier.weight"
    assert torch.allclose(weighted[key], 0.75 * before_a[key] + 0.25 * before_b[key], atol=1e-7)


def test_integer_buffers_are_copied_from_the_first_model_not_averaged():
    first = {"w": torch.tensor([1.0, 3.0]), "ids": torch.tensor([0, 1, 2]), "flag": torch.tensor([True, False])}
    second = {"w": torch.tensor([3.0, 5.0]), "ids": torch.tensor([7, 8, 9]), "flag": torch.tensor([False, True])}
    out = average_state_dicts([first, second], [0.5, 0.5])
    assert out["w"].tolist() == [2.0, 4.0] and out["ids"].tolist() == [0, 1, 2]
    assert out["flag"].tolist() == [True, False]
    half = average_state_dicts([{"w": first["w"].half()}, {"w": second["w"].half()}], [0.25, 0.75])["w"]
    assert half.dtype == torch.float16 and half.tolist() == [2.5, 4.5]


def test_wise_ft_gives_the_endpoints_and_the_midpoint():
    source_only, adapted = tiny_bert(seed=0), tiny_bert(seed=1)
    theta_0, theta_1 = float_params(source_only), float_params(adapted)
    at_0, at_1 = float_params(wise_ft(source_only, adapted, 0.0)), float_params(wise_ft(source_only, adapted, 1.0))
    middle = float_params(wise_ft(source_only, adapted, 0.5))
    for k in theta_0:
        assert torch.equal(at_0[k], theta_0[k]) and torch.equal(at_1[k], theta_1[k])
        assert torch.allclose(middle[k], (theta_0[k] + theta_1[k]) / 2, atol=1e-7)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        wise_ft(source_only, adapted, 1.5)


def test_mismatched_models_raise_naming_the_difference():
    two, three = tiny_bert(num_labels=2), tiny_bert(num_labels=3)
    with pytest.raises(ValueError, match="num_labels: member 1 has 3, member 0 has 2"):
        uniform_soup([two, three])
    renamed = tiny_bert(seed=1)
    renamed.config.id2label = {0: "negative", 1: "positive"}
    with pytest.raises(ValueError, match="id2label"):
        wise_ft(two, renamed)
    half = tiny_bert(seed=1).half()
    with pytest.raises(ValueError, match=r"'bert.embeddings.word_embeddings.weight' is \(64, 32\) torch.float16"):
        uniform_soup([two, half])
    wider = tiny_bert(seed=1)
    wider.classifier = torch.nn.Linear(32, 2, bias=False)
    with pytest.raises(ValueError, match="member 1 has no tensor 'classifier.bias'"):
        uniform_soup([two, wider])
    with pytest.raises(ValueError, match="one class"):
        uniform_soup([two, tiny_bert().bert])
    with pytest.raises(ValueError, match="weights must be 2 finite numbers"):
        uniform_soup([two, tiny_bert(seed=1)], weights=[1.0, -1.0])


def with_bias(seed: int, value: float) -> BertForSequenceClassification:
    model = tiny_bert(seed=seed)
    with torch.no_grad():
        model.classifier.bias.fill_(value)
    return model


def test_greedy_soup_skips_a_model_that_lowers_the_score():
    # the scorer prefers a classifier bias of 0.5: a (1.0) and b (0.0) score -0.25 alone and 0 together; c (-5)
    # drags the soup of all three to a bias of -4/3
    c, a, b = with_bias(2, -5.0), with_bias(0, 1.0), with_bias(1, 0.0)
    calls = []

    def score(model) -> float:
        calls.append(model.training)
        return -float((model.classifier.bias[0].detach() - 0.5) ** 2)

    result = greedy_soup([c, a, b], score)
    assert result.ingredients == [1, 2]  # a then b (sorted by score, ties in input order); c is left out
    assert result.score == 0.0 and result.individual_scores == [-30.25, -0.25, -0.25]
    expected = float_params(uniform_soup([a, b]))
    assert all(torch.equal(v, expected[k]) for k, v in float_params(result.model).items())
    assert not any(calls)  # every model is scored in eval mode
    assert len(calls) == 3 + 2  # each model alone, then the soups with b and with c


# ---- prediction ensembles --------------------------------------------------------------------------------------


def test_ensemble_saved_and_reloaded_averages_the_members_probabilities(tmp_path):
    members = [tiny_bert(seed=s).eval() for s in range(3)]
    ensemble = EnsembleForClassification.from_members(members, weights=[1, 1, 2])
    ensemble.save_pretrained(tmp_path / "ensemble")
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "ensemble").eval()
    assert isinstance(loaded, EnsembleForClassification) and loaded.config.member_weights == [0.25, 0.25, 0.5]
    ids, labels = torch.randint(1, VOCAB, (4, 7)), torch.tensor([0, 1, 1, 0])
    with torch.no_grad():
        out = loaded(input_ids=ids, labels=labels)
        by_hand = sum(w * m(input_ids=ids).logits.softmax(-1) for w, m in zip([0.25, 0.25, 0.5], members, strict=True))
    assert out.logits.shape == (4, 2)
    assert torch.allclose(out.logits.softmax(-1), by_hand, atol=1e-6)
    assert torch.allclose(out.logits.exp(), by_hand, atol=1e-6)  # the logits are the log of the mixture
    assert out.loss.item() == pytest.approx(-by_hand[torch.arange(4), labels].log().mean().item(), rel=1e-5)


def test_an_ensemble_or_a_soup_of_one_model_is_that_model():
    model = tiny_bert(seed=4).eval()
    ids, labels = torch.randint(1, VOCAB, (5, 6)), torch.tensor([0, 1, 1, 0, 1])
    ensemble = EnsembleForClassification.from_members([model]).eval()
    with torch.no_grad():
        alone, fused = model(input_ids=ids, labels=labels), ensemble(input_ids=ids, labels=labels)
    # the ensemble's logits are the member's log-probabilities: the same probabilities, predictions and loss
    assert torch.allclose(fused.logits, alone.logits.log_softmax(-1), atol=1e-6)
    assert torch.equal(fused.logits.argmax(-1), alone.logits.argmax(-1))
    assert fused.loss.item() == pytest.approx(alone.loss.item(), rel=1e-6)
    for soup in (uniform_soup([model]), greedy_soup([model], score=lambda m: 0.0).model):
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in soup.state_dict().items())


def test_ensemble_of_image_models_loads_with_the_image_auto_class(tmp_path):
    members = [tiny_vit(seed=s).eval() for s in range(2)]
    EnsembleForClassification.from_members(members).save_pretrained(tmp_path / "vit-ensemble")
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path / "vit-ensemble").eval()
    pixels = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        by_hand = sum(m(pixel_values=pixels).logits.softmax(-1) for m in members) / 2
        assert torch.allclose(loaded(pixel_values=pixels).logits.softmax(-1), by_hand, atol=1e-6)
    assert loaded.main_input_name == "pixel_values" and loaded.config.member_task == "image"


def test_ensemble_members_must_share_their_labels():
    with pytest.raises(ValueError, match="num_labels"):
        EnsembleForClassification.from_members([tiny_bert(num_labels=2), tiny_bert(num_labels=3)])
    renamed = tiny_bert(seed=1)
    renamed.config.id2label = {0: "negative", 1: "positive"}
    with pytest.raises(ValueError, match="id2label: member 1 has"):
        EnsembleForClassification.from_members([tiny_bert(), renamed])
    with pytest.raises(ValueError, match="different inputs"):
        EnsembleForClassification.from_members([tiny_bert(num_labels=3), tiny_vit(seed=0)])


def test_trainer_evaluates_an_ensemble(tmp_path):
    # the explicit forward arguments keep Trainer's remove_unused_columns from dropping input_ids (hfadapt evaluate)
    ensemble = EnsembleForClassification.from_members([tiny_bert(seed=0), tiny_bert(seed=1)])
    args = TrainingArguments(str(tmp_path / "eval"), use_cpu=True, report_to="none", per_device_eval_batch_size=8)
    metrics = Trainer(ensemble, args).evaluate(token_dataset(8, seed=3))
    assert metrics["eval_loss"] > 0


# ---- EMA of the weights during training ------------------------------------------------------------------------


class Recorder(TrainerCallback):
    """The task model's trainable weights at the start and after every optimizer step."""

    def __init__(self, module):
        self.module, self.steps = module, []

    def snapshot(self):
        return [p.detach().clone() for p in self.module.parameters() if p.requires_grad]

    def on_train_begin(self, args, state, control, **kwargs):
        self.steps = [self.snapshot()]

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(self.snapshot())


def train_with_ema(tmp_path, domains, decay):
    source, target, _ = domains
    trainer = make_trainer(tiny_bert(), source, target, tmp_path, method="dann", weight_ema_decay=decay)
    task_model = trainer.adapt_model.task_model
    recorder = Recorder(task_model)
    trainer.add_callback(recorder)
    trainer.train()
    return trainer, recorder.steps, [p.detach() for p in task_model.parameters() if p.requires_grad]


def test_ema_callback_leaves_the_hand_computed_ema_in_the_saved_model(tmp_path, domains):
    trainer, steps, final = train_with_ema(tmp_path, domains, decay=0.5)
    assert len(steps) == 1 + 4  # the initial weights, then max_steps=4 optimizer steps
    ema = steps[0]
    for k, theta in enumerate(steps[1:], start=1):
        d = min(0.5, (1 + k) / (10 + k))  # the warm-up decay
        ema = [d * e + (1 - d) * t for e, t in zip(ema, theta, strict=True)]
    assert all(torch.allclose(f, e, atol=1e-6) for f, e in zip(final, ema, strict=True))
    # not the last weights
    assert any(not torch.allclose(f, t, atol=1e-6) for f, t in zip(final, steps[-1], strict=True))
    trainer.save_model(str(tmp_path / "saved"))
    saved = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved")
    assert all(torch.allclose(p, e, atol=1e-6) for p, e in zip(saved.parameters(), ema, strict=True))


def test_ema_with_a_vanishing_decay_is_the_last_weights(tmp_path, domains):
    _, steps, final = train_with_ema(tmp_path, domains, decay=1e-12)
    assert all(torch.allclose(f, t, atol=1e-6) for f, t in zip(final, steps[-1], strict=True))


def test_ema_callback_without_warmup_on_a_module():
    layer = torch.nn.Linear(1, 1, bias=False)
    callback = WeightEMACallback(decay=0.9, warmup=False, module=layer)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        callback.on_train_begin(None, None, None)
        for value in (2.0, 4.0):
            layer.weight.fill_(value)
            callback.on_step_end(None, None, None)
    callback.on_train_end(None, None, None)
    expected = 0.9 * (0.9 * 1.0 + 0.1 * 2.0) + 0.1 * 4.0
    assert layer.weight.item() == pytest.approx(expected, rel=1e-6)


def test_weight_ema_decay_is_validated(tmp_path):
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="weight_ema_decay must be in"):
            make_config(tmp_path, weight_ema_decay=bad)
    with pytest.raises(ValueError, match="load_best_model_at_end"):
        make_config(tmp_path, weight_ema_decay=0.99, load_best_model_at_end=True, eval_strategy="steps",
                    save_strategy="steps", metric_for_best_model="loss")
    with pytest.raises(ValueError, match="decay must be in"):
        WeightEMACallback(decay=1.0)


# ---- hfadapt fuse ----------------------------------------------------------------------------------------------


@pytest.fixture
def saved_models(tmp_path):
    """Two tiny BERT folders with a tokenizer each."""
    dirs = []
    for seed in (0, 1):
        path = tmp_path / f"run{seed}"
        tiny_bert(seed=seed).save_pretrained(path)
        tiny_tokenizer().save_pretrained(path)
        dirs.append(path)
    return dirs


@pytest.mark.parametrize(("mode", "extra"), [("ensemble", ["--weights", "1", "3"]), ("uniform_soup", []),
                                              ("wise_ft", ["--alpha", "0.25"])])
def test_fuse_writes_a_folder_that_auto_loads(tmp_path, saved_models, capsys, mode, extra):
    out = tmp_path / "fused"
    cli.main(["fuse", *map(str, saved_models), "--output_dir", str(out), "--mode", mode, *extra])
    assert f"written: {out}" in capsys.readouterr().out
    fused = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert AutoTokenizer.from_pretrained(out)("w5 w6")["input_ids"] == [1, 5, 6, 2]
    a, b = (AutoModelForSequenceClassification.from_pretrained(d).eval() for d in saved_models)
    ids = torch.randint(1, VOCAB, (3, 6))
    if mode == "ensemble":
        assert isinstance(fused, EnsembleForClassification)
        with torch.no_grad():
            by_hand = 0.25 * a(input_ids=ids).logits.softmax(-1) + 0.75 * b(input_ids=ids).logits.softmax(-1)
            assert torch.allclose(fused(input_ids=ids).logits.softmax(-1), by_hand, atol=1e-6)
    else:
        alpha = 0.25 if mode == "wise_ft" else 0.5
        assert type(fused) is BertForSequenceClassification
        pa, pb, got = float_params(a), float_params(b), float_params(fused)
        assert all(torch.allclose(got[k], (1 - alpha) * pa[k] + alpha * pb[k], atol=1e-7) for k in pa)


def with_head(seed: int, bias: tuple[float, float]) -> BertForSequenceClassification:
    """A tiny BERT whose classifier predicts by its bias alone (zero weights)."""
    model = tiny_bert(seed=seed)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor(bias))
    return model


def test_fuse_greedy_soup_keeps_the_models_that_do_not_lower_held_out_accuracy(tmp_path, capsys):
    # held-out labels 0, 0, 0, 1: a model that always says 0 scores 0.75, one that always says 1 scores 0.25.
    # a and b say 0 (0.75, also together); c says 1, and the soup of all three (bias [20/3, 40/3]) says 1: left out
    members = {"c": with_head(2, (0.0, 40.0)), "a": with_head(0, (10.0, 0.0)), "b": with_head(1, (10.0, 0.0))}
    dirs = []
    for name, model in members.items():
        model.save_pretrained(tmp_path / name)
        tiny_tokenizer().save_pretrained(tmp_path / name)
        dirs.append(str(tmp_path / name))
    (tmp_path / "val.csv").write_text("text,label\nw5 w6,0\nw7,0\nw8 w9,0\nw5,1\n")
    out = tmp_path / "soup"
    cli.main(["fuse", *dirs, "--output_dir", str(out), "--mode", "greedy_soup",
              "--validation_file", str(tmp_path / "val.csv"), "--max_length", "16"])  # the tiny models read 64
    printed = capsys.readouterr().out
    assert f"greedy soup of {dirs[1]}, {dirs[2]}: held-out accuracy 0.7500" in printed
    assert "(each model alone: 0.2500, 0.7500, 0.7500)" in printed and f"written: {out}" in printed
    soup = AutoModelForSequenceClassification.from_pretrained(out)
    assert soup.config.greedy_soup == {"ingredients": [1, 2], "score": 0.75, "individual_scores": [0.25, 0.75, 0.75]}
    expected = float_params(uniform_soup([members["a"], members["b"]]))
    assert all(torch.equal(v, expected[k]) for k, v in float_params(soup).items())


@pytest.mark.parametrize(("args", "message"), [
    (["--mode", "greedy_soup"], "greedy_soup keeps a model only if the soup's accuracy on a labelled held-out set"),
    (["--mode", "greedy_soup", "--validation_file", "v.csv", "--weights", "1", "2"], "takes neither weights nor alpha"),
    (["--mode", "uniform_soup", "--validation_file", "v.csv"], "uniform_soup uses no held-out set"),
    (["missing", "--mode", "ensemble"], "does not exist"),
    (["three", "--mode", "uniform_soup"], "the models must share num_labels"),
    (["three", "--mode", "wise_ft"], "wise_ft fuses 2 models, got 3"),
    (["--mode", "wise_ft", "--weights", "1", "2"], "wise_ft takes alpha, not weights"),
    (["--mode", "wise_ft", "--alpha", "2"], "alpha must be in [0, 1], got 2.0"),
    (["--mode", "ensemble", "--alpha", "0.3"], "ensemble takes weights, not alpha"),
    (["--mode", "uniform_soup", "--weights", "1"], "weights must be 2 finite numbers"),
])
def test_fuse_errors_are_one_clear_line(tmp_path, saved_models, capsys, args, message):
    tiny_bert(num_labels=3).save_pretrained(tmp_path / "three")
    folders = [str(d) for d in saved_models]
    if args[0] in ("missing", "three"):
        folders, args = [*folders, str(tmp_path / args[0])], args[1:]
    capsys.readouterr()  # the progress bars of saving the folders above
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fuse", *folders, "--output_dir", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and message in err and "\n" not in err and err.startswith("hfadapt fuse: error")
    assert not (tmp_path / "out").exists()


def test_fuse_help_documents_every_argument(capsys):
    with pytest.raises(SystemExit):
        cli.main(["fuse", "--help"])
    text = capsys.readouterr().out
    fuse_parser = next(a for a in cli.build_parser()._subparsers._group_actions).choices["fuse"]
    for action in fuse_parser._actions:
        assert action.help, action.dest
    assert all(flag in text for flag in ("MODEL_DIR", "--output_dir", "--mode", "--alpha", "--weights", "Wortsman",
                                         "greedy_soup", "--validation_file"))
