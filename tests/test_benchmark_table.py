import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location(
    "sentiment_benchmark", Path(__file__).resolve().parents[1] / "benchmarks" / "sentiment_benchmark.py"
)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_table_means_stds_and_paired_gains():
    rows = [
        {"pair": "a:b", "method": "none", "seed": 1, "target_accuracy": 0.80},
        {"pair": "a:b", "method": "none", "seed": 2, "target_accuracy": 0.82},
        {"pair": "a:b", "method": "dann", "seed": 1, "target_accuracy": 0.83},
        {"pair": "a:b", "method": "dann", "seed": 2, "target_accuracy": 0.83},
        {"pair": "b:a", "method": "none", "seed": 1, "target_accuracy": 0.70},
        {"pair": "b:a", "method": "dann", "seed": 1, "target_accuracy": 0.69},
    ]
    table = bench.markdown_table(rows, ["none", "dann"], ["a:b", "b:a"]).splitlines()
    assert table[2] == "| source-only | 81.00 ± 1.41 (n=2) | 70.00 ± 0.00 (n=1) | 75.50 | — |"
    # gains are paired by seed: (3 + 1 - 1) / 3 = +1.00, standard error stdev(3, 1, -1) / sqrt(3) = 2 / 1.732
    assert table[3] == "| dann | 83.00 ± 0.00 (n=2) | 69.00 ± 0.00 (n=1) | 76.00 | +1.00 ± 1.15 |"
    missing = bench.markdown_table(rows[:4], ["none", "dann"], ["a:b", "b:a"]).splitlines()
    assert missing[3].endswith("| — | — | +2.00 ± 1.00 |")  # gains 3 and 1


def test_rows_are_tabled_only_with_a_matching_recipe():
    recipe = {"grl_max_lambda": 0.1, "weight_schedule": "warm_start", "iw_clip": 10.0}
    assert bench.same_recipe({"recipe": {"grl_max_lambda": 0.1, "weight_schedule": "warm_start"}}, recipe)
    assert not bench.same_recipe({"recipe": {"grl_max_lambda": 0.1, "weight_schedule": "constant"}}, recipe)
    assert not bench.same_recipe({}, recipe)  # rows that predate recipes
    # a field the row predates counts at its AdaptConfig default: iw_flattening's is 1.0
    old_row = {"recipe": {"iw_clip": 10.0}}
    assert bench.same_recipe(old_row, {"iw_clip": 10.0, "iw_flattening": 1.0})
    assert not bench.same_recipe(old_row, {"iw_clip": 10.0, "iw_flattening": 0.5})


def test_multi_source_pairs_are_two_domains_to_the_third():
    assert bench.MULTI_SOURCE_PAIRS == ["dvd+electronics:books", "books+electronics:dvd", "books+dvd:electronics"]


def test_a_method_s_recipe_leaves_out_the_other_methods_fields(tmp_path):
    from hfadapt import AdaptConfig

    config = AdaptConfig(output_dir=str(tmp_path), use_cpu=True)
    dann = bench.recipe_of(config, "dann")
    assert ("grl_max_lambda" in dann and "dann_weight" in dann and "mmd_weight" not in dann
            and "udalm_weight" not in dann)
    jan = bench.recipe_of(config, "jan")
    assert "jan_weight" in jan and "mmd_kernel_multipliers" in jan  # JAN reads the MMD kernel settings
    assert "dann_weight" not in bench.recipe_of(config, "none")
    # a method with settings of its own records them (a bare word is a string setting)
    assert bench.parse_setting("none:source_weighting=auto") == ("none", {"source_weighting": "auto"})
    assert bench.recipe_of(config, "none:source_weighting=auto")["source_weighting"] == "auto"
    assert bench.recipe_of(config, "none")["source_weighting"] == "uniform"


def _load_validator_benchmark():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        vspec = importlib.util.spec_from_file_location(
            "validator_benchmark", Path(__file__).resolve().parents[1] / "benchmarks" / "validator_benchmark.py")
        module = importlib.util.module_from_spec(vspec)
        vspec.loader.exec_module(module)
        return module
    finally:
        sys.path.pop(0)


def test_validator_selection_table_by_hand():
    vb = _load_validator_benchmark()
    assert vb.parse_setting("dann:grl_max_lambda=1.0,dann_weight=0.5") == ("dann", {"grl_max_lambda": 1.0,
                                                                                  "dann_weight": 0.5})
    assert vb.parse_setting("mcc") == ("mcc", {})
    rows = [  # one pair, two settings x two checkpoints; "good" ranks them exactly, "bad" in reverse
        {"pair": "a:b", "setting": "none", "seed": 1, "step": 10, "target_accuracy": 0.70,
         "scores": {"good": 1, "bad": 4}},
        {"pair": "a:b", "setting": "none", "seed": 1, "step": 20, "target_accuracy": 0.75,
         "scores": {"good": 2, "bad": 3}},
        {"pair": "a:b", "setting": "dann", "seed": 1, "step": 10, "target_accuracy": 0.80,
         "scores": {"good": 3, "bad": 2}},
        {"pair": "a:b", "setting": "dann", "seed": 1, "step": 20, "target_accuracy": 0.78,
         "scores": {"good": 4, "bad": 1}},
    ]
    lines = vb.selection_table(rows, ["good", "bad"]).splitlines()
    # good: ranks 1,2,3,4 vs accuracies ranked 1,2,4,3 -> rho = 1 - 6*2/(4*15) = 0.8; picks step 20 of dann (78.00);
    # within each run it picks step 20 of none (75) and of dann (78): 76.50; the runs' best 75 and 80, last 75 and 78
    assert lines[2] == "| good | +0.80 | 78.00 | 80.00 | 76.50 | 77.50 | 76.50 |"
    # bad picks step 10 of none (70) overall; within each run step 10: 70 and 80
    assert lines[3] == "| bad | -0.80 | 70.00 | 80.00 | 75.00 | 77.50 | 76.50 |"
    # only pairs with every setting are tabled
    assert vb.complete_pairs(rows, ["none", "dann"]) == {("a:b", 1)}
    assert vb.complete_pairs(rows[:2], ["none", "dann"]) == set()


def test_a_run_is_claimed_by_one_process_only(tmp_path):
    assert bench.claim(None, "books:dvd", "dann", 1)  # no shared folder: every run is this process's
    assert bench.claim(str(tmp_path / "grid"), "books:dvd", "dann", 1)
    assert not bench.claim(str(tmp_path / "grid"), "books:dvd", "dann", 1)  # a second process skips it
    assert bench.claim(str(tmp_path / "grid"), "books:dvd", "dann", 2)
    assert bench.claim(str(tmp_path / "grid"), "books+dvd:electronics", "dann", 1)
