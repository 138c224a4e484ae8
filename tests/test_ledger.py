"""The benchmark results ledger (hfadapt.benchmarking.ledger) on hand-made rows."""

import dataclasses
import multiprocessing
from argparse import Namespace

import pytest
import torch

from hfadapt import AdaptConfig
from hfadapt.benchmarking import ledger
from hfadapt.benchmarking.pairs import MULTI_SOURCE_PAIRS, pair_data
from hfadapt.data import DataArguments


@pytest.fixture
def config(tmp_path):
    return AdaptConfig(output_dir=str(tmp_path), use_cpu=True)


def test_table_means_stds_and_paired_gains():
    rows = [
        {"pair": "a:b", "method": "none", "seed": 1, "target_accuracy": 0.80},
        {"pair": "a:b", "method": "none", "seed": 2, "target_accuracy": 0.82},
        {"pair": "a:b", "method": "dann", "seed": 1, "target_accuracy": 0.83},
        {"pair": "a:b", "method": "dann", "seed": 2, "target_accuracy": 0.83},
        {"pair": "b:a", "method": "none", "seed": 1, "target_accuracy": 0.70},
        {"pair": "b:a", "method": "dann", "seed": 1, "target_accuracy": 0.69},
    ]
    table = ledger.markdown_table(rows, ["none", "dann"], ["a:b", "b:a"]).splitlines()
    assert table[2] == "| source-only | 81.00 ± 1.41 (n=2) | 70.00 ± 0.00 (n=1) | 75.50 | — |"
    # gains are paired by seed: (3 + 1 - 1) / 3 = +1.00, standard error stdev(3, 1, -1) / sqrt(3) = 2 / 1.732
    assert table[3] == "| dann | 83.00 ± 0.00 (n=2) | 69.00 ± 0.00 (n=1) | 76.00 | +1.00 ± 1.15 |"
    missing = ledger.markdown_table(rows[:4], ["none", "dann"], ["a:b", "b:a"]).splitlines()
    assert missing[3].endswith("| — | — | +2.00 ± 1.00 |")  # gains 3 and 1


def test_paired_gain_of_two_pairs_by_two_seeds_by_hand():
    accuracy = {("a:b", "none"): (0.80, 0.84), ("a:b", "dann"): (0.82, 0.85),
                ("b:a", "none"): (0.70, 0.74), ("b:a", "dann"): (0.75, 0.73)}
    rows = [{"pair": pair, "method": method, "seed": seed, "target_accuracy": acc}
            for (pair, method), accs in accuracy.items() for seed, acc in zip((1, 2), accs, strict=True)]
    header, rule, base, dann = ledger.markdown_table(rows, ["none", "dann"], ["a:b", "b:a"]).splitlines()
    assert header == "| method | a -> b | b -> a | average | vs source-only (± s.e.) |"
    assert rule == "|---|---:|---:|---:|---:|"
    # source-only: means 82 and 72 (std sqrt(8) = 2.83 each), average 77
    assert base == "| source-only | 82.00 ± 2.83 (n=2) | 72.00 ± 2.83 (n=2) | 77.00 | — |"
    # dann: means 83.5 (std sqrt(4.5) = 2.12) and 74 (std sqrt(2) = 1.41), average 78.75; paired gains +2, +1, +5,
    # -1: mean 7 / 4 = 1.75, stdev sqrt(18.75 / 3) = 2.5, standard error 2.5 / sqrt(4) = 1.25
    assert dann == "| dann | 83.50 ± 2.12 (n=2) | 74.00 ± 1.41 (n=2) | 78.75 | +1.75 ± 1.25 |"


def test_a_method_without_rows_is_left_out_and_a_missing_pair_has_no_average():
    rows = [{"pair": "a:b", "method": "none", "seed": 1, "target_accuracy": 0.5}]
    lines = ledger.markdown_table(rows, ["none", "dann"], ["a:b", "b:a"]).splitlines()
    assert lines[2:] == ["| source-only | 50.00 ± 0.00 (n=1) | — | — | — |"]


def test_rows_are_tabled_only_with_a_matching_recipe():
    recipe = {"grl_max_lambda": 0.1, "weight_schedule": "warm_start", "iw_clip": 10.0}
    assert ledger.same_recipe({"recipe": {"grl_max_lambda": 0.1, "weight_schedule": "warm_start"}}, recipe)
    assert not ledger.same_recipe({"recipe": {"grl_max_lambda": 0.1, "weight_schedule": "constant"}}, recipe)
    assert not ledger.same_recipe({}, recipe)  # rows that predate recipes
    # a field the row predates counts at its AdaptConfig default: iw_flattening's is 1.0
    old_row = {"recipe": {"iw_clip": 10.0}}
    assert ledger.same_recipe(old_row, {"iw_clip": 10.0, "iw_flattening": 1.0})
    assert not ledger.same_recipe(old_row, {"iw_clip": 10.0, "iw_flattening": 0.5})


def test_a_new_field_at_its_default_keeps_older_rows_and_a_moved_one_voids_them():
    old_row = {"recipe": {"dann_weight": 1.0}}
    defaults = {"dann_weight": 1.0, "new_weight": 0.3}
    assert ledger.same_recipe(old_row, {"dann_weight": 1.0, "new_weight": 0.3}, defaults)
    assert not ledger.same_recipe(old_row, {"dann_weight": 1.0, "new_weight": 0.4}, defaults)
    # a field that is not an AdaptConfig field at all (a recipe key with no default) does not void the row
    assert ledger.same_recipe(old_row, {"dann_weight": 1.0, "elsewhere": 7}, defaults)
    # a field the row records must agree, default or not
    assert not ledger.same_recipe({"recipe": {"dann_weight": 0.5}}, {"dann_weight": 1.0}, defaults)


def test_config_defaults_are_json_values_with_the_defaults_before_recipes():
    defaults = ledger.config_defaults()
    assert defaults["iw_flattening"] == 1.0 and defaults["grl_max_lambda"] == 1.0  # as rows before recipes ran
    assert defaults["method"] == AdaptConfig.method
    assert isinstance(defaults["mmd_kernel_multipliers"], list)  # a tuple default as JSON stores it


def test_rows_match_by_budget_and_recipe(config):
    budget = {"max_steps": 100, "max_length": 64}
    dann = {"pair": "a:b", "method": "dann", "seed": 1, "budget": budget, "recipe": ledger.row_recipe(config, "dann")}
    none = {**dann, "method": "none", "recipe": ledger.row_recipe(config, "none")}
    other_budget = {**dann, "budget": {**budget, "max_steps": 300}}
    retuned = {**dann, "recipe": {**dann["recipe"], "dann_weight": 0.5}}
    rows = [dann, none, other_budget, retuned]
    assert ledger.matching_rows(rows, budget, config) == [dann, none]
    # retuning DANN voids its rows only: source-only's recipe does not hold DANN's settings
    moved = dataclasses.replace(config, dann_weight=0.5)
    assert ledger.matching_rows(rows, budget, moved) == [none, retuned]


def test_rows_read_as_the_spec_they_ran_as_when_the_recipe_moves_a_setting(config):
    budget = {"max_steps": 100}
    dann = {"pair": "a:b", "method": "dann", "seed": 1, "budget": budget, "recipe": ledger.row_recipe(config, "dann")}
    half = {**dann, "method": "dann:dann_weight=0.5", "recipe": ledger.row_recipe(config, "dann:dann_weight=0.5")}
    none = {**dann, "method": "none", "recipe": ledger.row_recipe(config, "none")}
    soup = {**dann, "method": "uniform_soup:none/dann", "fusion": {"mode": "uniform_soup", "members": ["none", "dann"]},
            "recipe": ledger.fusion_recipe(config, ["none", "dann"])}
    rows = [dann, half, none, soup]
    moved = dataclasses.replace(config, dann_weight=0.5)  # the recipe's DANN weight moves from 1.0 to 0.5
    specs = ["none", "dann", "dann:dann_weight=1.0", "uniform_soup:none/dann:dann_weight=1.0"]
    assert [r["method"] for r in ledger.matching_rows(rows, budget, moved, specs)] == specs[2:3] + specs[1:2] + [
        "none", specs[3]]
    assert ledger.matching_rows(rows, budget, moved, specs)[2] is none  # a row read as itself is not copied
    # a row whose own name is asked for keeps it, though another spec asked for has the same recipe
    assert [r["method"] for r in ledger.matching_rows([half], budget, moved, ["dann", half["method"]])] == [
        half["method"]]
    # no spec of the same method with the row's recipe: left out, as without specs
    assert ledger.matching_rows(rows, budget, moved, ["none", "dann"]) == [{**half, "method": "dann"}, none]
    assert ledger.matching_rows(rows, budget, moved) == [half, none]


def test_a_row_that_predates_a_field_matches_while_the_field_stays_at_its_default(config):
    budget = {"max_steps": 100}
    recipe = ledger.row_recipe(config, "dann")
    assert recipe["dann_weight"] == ledger.config_defaults()["dann_weight"]
    old = {"pair": "a:b", "method": "dann", "seed": 1, "budget": budget,
           "recipe": {k: v for k, v in recipe.items() if k != "dann_weight"}}
    assert ledger.matching_rows([old], budget, config) == [old]
    assert ledger.matching_rows([old], budget, dataclasses.replace(config, dann_weight=0.5)) == []


def test_early_stopping_fields_are_compared_through_the_budget_not_the_recipe(config):
    # a row written when the recipe had no early stopping, its budget's early stopping doing the work
    budget = {"max_steps": 600, "early_stopping_patience": 3, "min_steps": 300}
    recipe = ledger.row_recipe(config, "none")
    old = {"pair": "a:b", "method": "none", "seed": 1, "budget": budget,
           "recipe": {**recipe, "early_stopping_patience": 0, "early_stopping_min_steps": 0}}
    now = dataclasses.replace(config, early_stopping_patience=3, early_stopping_min_steps=300,
                              load_best_model_at_end=True, metric_for_best_model="source_val_accuracy",
                              eval_strategy="steps", save_strategy="steps")
    assert ledger.matching_rows([old], budget, now) == [old]
    assert ledger.matching_rows([old], {**budget, "min_steps": 200}, now) == []


def test_a_method_s_recipe_leaves_out_the_other_methods_fields(config):
    dann = ledger.recipe_of(config, "dann")
    assert ("grl_max_lambda" in dann and "dann_weight" in dann and "mmd_weight" not in dann
            and "udalm_weight" not in dann)
    jan = ledger.recipe_of(config, "jan")
    assert "jan_weight" in jan and "mmd_kernel_multipliers" in jan  # JAN reads the MMD kernel settings
    assert "dann_weight" not in ledger.recipe_of(config, "none")
    # a method with settings of its own records them (a bare word is a string setting)
    assert ledger.parse_setting("none:source_weighting=auto") == ("none", {"source_weighting": "auto"})
    assert ledger.recipe_of(config, "none:source_weighting=auto")["source_weighting"] == "auto"
    assert ledger.recipe_of(config, "none")["source_weighting"] == "uniform"


def test_parse_setting():
    assert ledger.parse_setting("dann:grl_max_lambda=1.0,dann_weight=0.5") == ("dann", {"grl_max_lambda": 1.0,
                                                                                      "dann_weight": 0.5})
    assert ledger.parse_setting("mcc") == ("mcc", {})


def test_budget_records_convergence_keys_only_when_evaluating(config):
    args = Namespace(max_steps=100, max_length=64, max_train_samples=None, max_eval_samples=1000,
                     train_sampling_strategy="random", eval_steps=0, early_stopping_patience=4, min_steps=300)
    budget = ledger.budget_of(args, config)
    assert list(budget) == list(ledger.BUDGET_KEYS)
    assert budget["per_device_train_batch_size"] == config.per_device_train_batch_size
    converged = ledger.budget_of(Namespace(**{**vars(args), "eval_steps": 50}), config)
    assert list(converged) == [*ledger.BUDGET_KEYS, *ledger.CONVERGENCE_KEYS] and converged["eval_steps"] == 50


def test_rows_are_appended_and_read_back(tmp_path):
    path = tmp_path / "results.jsonl"
    assert ledger.load_results(path) == []  # no file yet
    ledger.append_row(path, {"pair": "a:b", "seed": 1})
    ledger.append_row(path, {"pair": "b:a", "seed": 2})
    assert ledger.load_results(path) == [{"pair": "a:b", "seed": 1}, {"pair": "b:a", "seed": 2}]
    assert path.read_text().count("\n") == 2


def test_a_run_is_claimed_by_one_process_only(tmp_path):
    assert ledger.claim(None, "books:dvd", "dann", 1)  # no shared folder: every run is this process's
    assert ledger.claim(str(tmp_path / "grid"), "books:dvd", "dann", 1)
    assert not ledger.claim(str(tmp_path / "grid"), "books:dvd", "dann", 1)  # a second process skips it
    assert ledger.claim(str(tmp_path / "grid"), "books:dvd", "dann", 2)
    assert ledger.claim(str(tmp_path / "grid"), "books+dvd:electronics", "dann", 1)


def test_processes_racing_for_a_run_get_it_once(tmp_path):
    grid = str(tmp_path / "grid")
    with multiprocessing.get_context("fork").Pool(4) as pool:
        won = pool.starmap(ledger.claim, [(grid, "books:dvd", "dann", 1)] * 8 + [(grid, "books:dvd", "mmd", 1)] * 8)
    assert sum(won[:8]) == 1 and sum(won[8:]) == 1


def test_multi_source_pairs_are_two_domains_to_the_third():
    assert MULTI_SOURCE_PAIRS == ["dvd+electronics:books", "books+electronics:dvd", "books+dvd:electronics"]


def test_a_pair_sets_the_domains_of_the_recipe_s_data():
    data = DataArguments(dataset_name="demo:amazon-msd", domain_column_name="domain", source="books",
                         target="electronics", max_length=64)
    assert pair_data(data, "books+dvd:electronics") == dataclasses.replace(data, source="books+dvd")
    with pytest.raises(ValueError, match="source:target"):
        pair_data(data, "books")
    with pytest.raises(ValueError, match="domain column"):
        pair_data(DataArguments(source_dataset_name="a", target_dataset_name="b"), "books:dvd")


def test_validator_means_read_the_same_blocks_for_every_method():
    rows = [
        {"pair": "a:b", "seed": 1, "method": "none", "validators": {"dev": -1.0, "snd": 0.5}},
        {"pair": "a:b", "seed": 1, "method": "dann", "validators": {"dev": -0.5, "snd": 0.1}},
        {"pair": "a:b", "seed": 2, "method": "none", "validators": {"dev": -3.0, "snd": 0.3}},
        {"pair": "a:b", "seed": 2, "method": "dann", "validators": {"dev": 0.5, "snd": 0.3}},
        {"pair": "a:b", "seed": 3, "method": "none", "validators": {"dev": -9.0, "snd": 9.0}},  # dann not run yet
        {"pair": "c:d", "seed": 1, "method": "none", "validators": {"dev": 5.0, "snd": 5.0}},  # not a pair asked for
        {"pair": "a:b", "seed": 1, "method": "mmd", "validators": {}},  # no validators: not a method of the table
    ]
    table = ledger.validator_table(rows, ["none", "dann", "mmd"], ["a:b"])
    assert table.splitlines() == ["| method (2 pair-seed blocks) | dev | snd |", "|---|---:|---:|",
                                  "| source-only | -2.000 | 0.400 |", "| dann | 0.000 | 0.200 |"]
    assert ledger.validator_table(rows[:1], ["none", "dann"], ["c:d"]) == ""


def test_environment_names_the_processor_and_the_kernels_torch_uses(monkeypatch):
    env = ledger.environment(bf16=True)
    assert env["device"] == "cpu" and env["precision"] == "bf16"
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["processor"] == ledger.processor_name()
    monkeypatch.setattr("builtins.open", lambda *a, **k: (_ for _ in ()).throw(OSError("no /proc")))
    monkeypatch.setattr(ledger.platform, "processor", lambda: "x86_64")
    assert ledger.processor_name() == "x86_64"


def test_a_prior_matched_row_is_the_matched_model_under_its_own_name():
    matched = {"source_val_accuracy": 0.85, "target_accuracy": 0.84, "validators": {"dev": -0.5}}
    rows = [{"pair": "a:b", "method": "none", "seed": 1, "target_accuracy": 0.80, "validators": {"dev": -0.7},
             "budget": {"max_steps": 9}, "prior_matched": {"shift": [0.1, -0.1], "unmatched": {}, "matched": matched}},
            {"pair": "a:b", "method": "dann", "seed": 1, "target_accuracy": 0.81}]
    (row,) = ledger.prior_matched_rows(rows)
    assert row == {"pair": "a:b", "method": "none + prior matching", "seed": 1, "budget": {"max_steps": 9},
                   **matched}
    assert "prior_matched" in rows[0] and rows[0]["method"] == "none"  # the run's own row is left alone


def test_gain_summary_reads_the_complete_blocks_only():
    def row(pair, seed, method, accuracy, dev=None):
        return {"pair": pair, "seed": seed, "method": method, "target_accuracy": accuracy,
                **({"validators": {"dev": dev}} if dev is not None else {})}

    rows = [row("a:b", 1, "none", 0.80, -1.0), row("a:b", 1, "dann", 0.83, -0.5),
            row("a:b", 2, "none", 0.82, -2.0), row("a:b", 2, "dann", 0.81, -1.5),
            row("b:a", 1, "none", 0.70, -9.0),  # dann not run yet: left out
            row("c:d", 1, "none", 0.10), row("c:d", 1, "dann", 0.90)]  # not a pair asked for
    lines = ledger.gain_summary(rows, ["dann"], ["a:b", "b:a"]).splitlines()
    # gains +3 and -1 points: mean +1, s.e. stdev(3, -1) / sqrt(2) = 2.83 / 1.41 = 2.00
    assert lines[2:] == ["| source-only | — | — | — | -1.500 |", "| dann | +1.00 ± 2.00 | 1 of 2 | -1.00 | -1.000 |"]
    assert lines[0].startswith("| model (2 pair-seed blocks) |")
    assert ledger.gain_summary(rows[:1], ["dann"], ["a:b"]) == ""
    without_dev = ledger.gain_summary(rows[-2:], ["dann"], ["c:d"]).splitlines()
    assert without_dev[3] == "| dann | +80.00 | 1 of 1 | +80.00 | — |"


def test_block_gains_lists_each_block_against_its_source_only_run():
    rows = [{"pair": p, "seed": s, "method": m, "target_accuracy": a} for p, s, m, a in [
        ("b:a", 1, "none", 0.70), ("b:a", 1, "dann", 0.725),
        ("a:b", 2, "none", 0.80), ("a:b", 2, "dann", 0.79), ("a:b", 2, "mmd", 0.84),
        ("a:b", 1, "none", 0.81),  # no method has run yet: its cells are dashes
        ("a:b", 3, "dann", 0.90),  # no source-only run: no block
        ("c:d", 1, "none", 0.50)]]  # not a pair asked for
    lines = ledger.block_gains(rows, ["none", "dann", "mmd"], ["a:b", "b:a"]).splitlines()
    assert lines == ["| block | source-only | dann | mmd |", "|---|---:|---:|---:|",
                     "| a -> b, seed 1 | 81.00 | — | — |",
                     "| a -> b, seed 2 | 80.00 | -1.00 | +4.00 |",
                     "| b -> a, seed 1 | 70.00 | +2.50 | — |"]
    assert ledger.block_gains(rows[-2:], ["dann"], ["a:b"]) == ""
