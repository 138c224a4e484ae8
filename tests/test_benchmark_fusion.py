"""Fusions on the benchmark grid (hfadapt.benchmarking.fusion): their specs and how their rows match a recipe."""

import dataclasses

import pytest
import torch
from conftest import tiny_bert

from hfadapt import AdaptConfig
from hfadapt.benchmarking import ledger
from hfadapt.benchmarking.fusion import Fusion, fusion_members
from hfadapt.benchmarking.store import MemberStore
from hfadapt.fusion import EnsembleForClassification


def test_a_spec_names_the_mode_and_the_members_in_order():
    fusion = Fusion.parse("ensemble:self_training/adamatch")
    assert fusion == Fusion("ensemble", ("self_training", "adamatch"))
    assert fusion.name == "ensemble:self_training/adamatch"
    # a member may be a combination or carry settings of its own
    assert Fusion.parse("uniform_soup:dann+mmd/self_training:self_training_warmup=0").members == (
        "dann+mmd", "self_training:self_training_warmup=0")
    assert fusion_members([fusion, Fusion.parse("wise_ft:none/adamatch")]) == ["self_training", "adamatch", "none"]


@pytest.mark.parametrize("spec, message", [
    ("ensemble", "write '<mode>:"),
    ("average:none/dann", "not one of"),
    ("ensemble:", "names no member"),
    ("ensemble:none//dann", "names no member"),
    ("ensemble:dann/dann", "twice"),
    ("wise_ft:none/dann/mmd", "fuses 2 models"),
])
def test_a_bad_spec_is_refused_with_what_to_write(spec, message):
    with pytest.raises(ValueError, match=message):
        Fusion.parse(spec)


def test_build_fuses_the_members_models_in_member_order():
    a, b = tiny_bert(seed=1), tiny_bert(seed=2)
    ensemble = Fusion.parse("ensemble:x/y").build({"y": b, "x": a})
    assert isinstance(ensemble, EnsembleForClassification) and list(ensemble.members) == [a, b]
    start = Fusion.parse("wise_ft:x/y").build({"x": a, "y": b})
    halfway = {k: (v + b.state_dict()[k]) / 2 for k, v in a.state_dict().items() if v.is_floating_point()}
    assert all(torch.allclose(start.state_dict()[k], v) for k, v in halfway.items())


def test_a_greedy_soup_chooses_its_members_by_the_score_it_is_given():
    a, b = tiny_bert(seed=1), tiny_bert(seed=2)
    fusion = Fusion.parse("greedy_soup:x/y")
    assert fusion.uses_score and not Fusion.parse("uniform_soup:x/y").uses_score
    soup = fusion.build({"x": a, "y": b}, score=lambda model: float(model is b))
    assert soup.config.greedy_soup["ingredients"] == [1]  # y alone: the soup of y and x (a new model) scores 0
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in soup.state_dict().items())
    with pytest.raises(ValueError, match="greedy_soup keeps a model only if"):
        fusion.build({"x": a, "y": b})
    with pytest.raises(ValueError, match="ensemble uses no held-out set"):
        Fusion.parse("ensemble:x/y").build({"x": a, "y": b}, score=lambda model: 0.0)


def test_a_fused_row_matches_while_every_member_s_recipe_does(tmp_path):
    config = AdaptConfig(output_dir=str(tmp_path), use_cpu=True)
    budget = {"max_steps": 100}
    row = {"pair": "a:b", "method": "ensemble:none/dann", "seed": 1, "budget": budget,
           "fusion": {"mode": "ensemble", "members": ["none", "dann"]},
           "recipe": ledger.fusion_recipe(config, ["none", "dann"])}
    assert ledger.matching_rows([row], budget, config) == [row]
    assert ledger.matching_rows([row], budget, dataclasses.replace(config, dann_weight=0.5)) == []  # a member moved
    assert ledger.matching_rows([row], {"max_steps": 200}, config) == []
    partial = {**row, "recipe": {"none": row["recipe"]["none"]}}  # a member's recipe missing: not this fusion
    assert ledger.matching_rows([partial], budget, config) == []


def key(config: AdaptConfig, spec: str, budget: dict | None = None) -> dict:
    """A run key of ``spec`` on ``config``'s recipe, with a fixed backbone and data."""
    return ledger.run_key(config, spec, budget or {"max_steps": 100}, "tiny", {"max_length": 16})


def test_the_member_store_gives_back_the_weights_it_kept(tmp_path):
    store = MemberStore(tmp_path / "members")
    config = AdaptConfig(output_dir=str(tmp_path), use_cpu=True)
    warm0 = key(config, "self_training:self_training_warmup=0")
    weights = tiny_bert(seed=3).state_dict()
    assert not store.has("books:dvd", 1, warm0)
    store.save("books:dvd", 1, warm0, weights, "self_training:self_training_warmup=0")
    assert store.has("books:dvd", 1, warm0)
    assert not store.has("books:dvd", 1, key(config, "self_training")) and not store.has("books:dvd", 2, warm0)
    kept = store.load("books:dvd", 1, warm0)
    assert kept.keys() == weights.keys() and all(torch.equal(kept[k], v) for k, v in weights.items())
    assert sorted(p.suffix for p in (tmp_path / "members").iterdir()) == [".json", ".pt"]
    assert store.kept_as("books:dvd", "self_training:self_training_warmup=0", 1) == warm0
    assert store.kept_as("books:dvd", "self_training", 1) is None
    with pytest.raises(FileNotFoundError):
        store.load("books:dvd", 1, key(config, "adamatch"))


def test_a_kept_member_is_found_by_the_run_it_names_not_by_its_spec(tmp_path):
    store = MemberStore(tmp_path)
    before = AdaptConfig(output_dir=str(tmp_path), use_cpu=True, adamatch_distribution_alignment=True)
    store.save("a:b", 1, key(before, "adamatch"), {"w": torch.ones(2)}, "adamatch")
    # the recipe turns alignment off: "adamatch" is another run now, and the kept model is not taken for it
    after = dataclasses.replace(before, adamatch_distribution_alignment=False)
    assert not store.has("a:b", 1, key(after, "adamatch"))
    # but the spec that names the kept run finds it
    assert store.has("a:b", 1, key(after, "adamatch:adamatch_distribution_alignment=true"))
    # another budget, or a validator the grid scores besides (not what it trains)
    assert not store.has("a:b", 1, key(before, "adamatch", {"max_steps": 200}))
    assert store.has("a:b", 1, key(dataclasses.replace(before, label_free_validators=["dev", "im"]), "adamatch"))
    # two grids' models of one name in one folder: a script reading it by name cannot tell which is meant
    store.save("a:b", 1, key(after, "adamatch"), {"w": torch.zeros(2)}, "adamatch")
    with pytest.raises(ValueError, match="keeps 2 models of adamatch on a:b seed 1"):
        store.kept_as("a:b", "adamatch", 1)


def test_waiting_for_members_ends_when_they_are_kept_or_the_time_is_out(tmp_path):
    store = MemberStore(tmp_path)
    config = AdaptConfig(output_dir=str(tmp_path), use_cpu=True)
    store.save("a:b", 1, key(config, "none"), {"w": torch.zeros(2)}, "none")
    assert store.wait("a:b", 1, [key(config, "none")], timeout_s=0)
    assert not store.wait("a:b", 1, [key(config, "none"), key(config, "dann")], timeout_s=0.05, poll_s=0.01)


def test_a_fusion_s_file_name_is_one_path_component():
    fusion = Fusion.parse("ensemble:self_training/adamatch")
    assert fusion.file_name == "ensemble:self_training%2Fadamatch" and "/" not in fusion.file_name
