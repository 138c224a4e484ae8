"""The benchmark scripts' own tables: the sentiment grid's table from a ledger, the validator selection table."""

import json

import pytest
from helpers import Killed, kill_after_checkpoint, load_benchmark, saved_tiny_bert


def test_table_only_tables_the_rows_of_the_budget_and_recipe(tmp_path):
    from hfadapt import AdaptConfig
    from hfadapt.benchmarking import ledger
    from hfadapt.cli.args import parse_with_config
    from hfadapt.data import DataArguments

    bench = load_benchmark("sentiment_benchmark")
    flags = ["--pairs", "books:dvd", "--multi_source_pairs", "--methods", "none", "dann"]
    args = bench.parse(flags)
    _, config = parse_with_config((DataArguments, AdaptConfig), ["--output_dir", str(tmp_path)],
                                  default_config=args.recipe)  # what the benchmark reads from its recipe
    budget = ledger.budget_of(args, config)
    rows = [{"pair": "books:dvd", "method": m, "seed": s, "target_accuracy": acc, "budget": budget,
             "recipe": ledger.row_recipe(config, m)}
            for m, s, acc in [("none", 1, 0.80), ("none", 2, 0.82), ("dann", 1, 0.83), ("dann", 2, 0.83)]]
    rows.append({**rows[0], "seed": 3, "budget": {**budget, "max_steps": 1}})  # another budget: left out
    rows.append({**rows[2], "seed": 3, "recipe": {**rows[2]["recipe"], "grl_max_lambda": 0.5}})  # retuned: left out
    results, table = tmp_path / "rows.jsonl", tmp_path / "table.md"
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bench.main([*flags, "--table_only", "--results", str(results), "--table", str(table)])
    lines = table.read_text().splitlines()
    assert lines[0] == f"Budget: {json.dumps(budget)}; recipe sentiment_transfer.yaml"
    assert lines[4:6] == ["| source-only | 81.00 ± 1.41 (n=2) | 81.00 | — |",
                          "| dann | 83.00 ± 0.00 (n=2) | 83.00 | +2.00 ± 1.00 |"]
    summary = lines.index("Per model, over the blocks where every model has a row:")
    assert lines[summary + 4:summary + 6] == ["| source-only | — | — | — | — |",
                                              "| dann | +2.00 ± 1.00 | 2 of 2 | +1.00 | — |"]
    assert lines[-2:] == ["| books -> dvd, seed 1 | 80.00 | +3.00 |", "| books -> dvd, seed 2 | 82.00 | +1.00 |"]


def test_the_quick_screen_turns_off_the_recipe_s_early_stopping(tmp_path):
    from hfadapt import AdaptConfig
    from hfadapt.cli.args import parse_with_config
    from hfadapt.data import DataArguments

    bench = load_benchmark("sentiment_benchmark")
    _, config = parse_with_config((DataArguments, AdaptConfig), ["--output_dir", str(tmp_path)],
                                  default_config=bench.parse([]).recipe)
    assert config.early_stopping_patience > 0  # the recipe's, which needs evaluations the quick screen does not run
    quick = bench.run_config(config, bench.parse([]), "none", 1, tmp_path / "run")
    assert quick.eval_strategy == "no" and quick.early_stopping_patience == 0
    converged = bench.run_config(config, bench.parse(["--eval_steps", "50", "--early_stopping_patience", "2",
                                                      "--min_steps", "100"]), "none", 1, tmp_path / "run")
    assert (converged.early_stopping_patience, converged.early_stopping_min_steps) == (2, 100)


def test_mixed_precision_flag_overrides_the_recipe_s(tmp_path):
    from hfadapt.utils.precision import native_bf16

    bench = load_benchmark("sentiment_benchmark")
    _, fp32 = bench.read_recipe(bench.parse(["--mixed_precision", "no"]), str(tmp_path))
    _, bf16 = bench.read_recipe(bench.parse(["--mixed_precision", "bf16"]), str(tmp_path))
    assert (fp32.mixed_precision, fp32.bf16) == ("no", False)
    assert (bf16.mixed_precision, bf16.bf16) == ("bf16", True)
    _, recipe = bench.read_recipe(bench.parse([]), str(tmp_path))
    assert recipe.bf16 == native_bf16()  # the recipe's own 'auto' when the flag is not given


def test_early_steps_builds_the_grid_s_run_from_the_grid_s_own_flags(tmp_path, monkeypatch):
    from helpers import BENCHMARKS

    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the script imports sentiment_benchmark, as python runs it
    early, bench = load_benchmark("early_steps"), load_benchmark("sentiment_benchmark")
    grid_flags = ["--max_length", "128", "--max_steps", "600", "--eval_steps", "50", "--max_eval_samples", "300",
                  "--tapt_cache_dir", str(tmp_path / "store")]
    own, grid = early.parse([*grid_flags, "--pair", "dvd:electronics", "--seed", "2", "--method", "adamatch",
                             "--steps", "60"])
    assert (own.pair, own.seed, own.method, own.steps, own.logging_steps) == ("dvd:electronics", 2, "adamatch", 60, 5)
    assert vars(grid) == vars(bench.parse(grid_flags))  # every other flag is the benchmark's
    data, config = bench.grid_setup(grid, str(tmp_path))
    assert (data.max_length, data.max_eval_samples, config.tapt_cache_dir) == (128, 300, str(tmp_path / "store"))
    with pytest.raises(SystemExit):
        early.parse(["--pair", "dvd:electronics", "--seed", "2", "--method", "adamatch", "--no_such_flag", "1"])


def test_validator_selection_table_by_hand():
    vb = load_benchmark("validator_benchmark")
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


def test_source_task_scan_flags_by_hand_against_the_block_s_latest_source_only_row(capsys, tmp_path):
    scan = load_benchmark("source_task_scan")
    budget, other_budget = {"max_steps": 600}, {"max_steps": 100}
    rows = [
        {"pair": "a:b", "seed": 1, "method": "none", "source_val_accuracy": 0.9, "budget": budget},
        {"pair": "a:b", "seed": 1, "method": "none", "source_val_accuracy": 0.6, "budget": budget},  # the latest
        {"pair": "a:b", "seed": 1, "method": "x", "source_val_accuracy": 0.4, "budget": budget},
        {"pair": "a:b", "seed": 1, "method": "w", "source_val_accuracy": 0.4, "budget": budget, "source_val_rows": 50},
        {"pair": "a:b", "seed": 1, "method": "soup", "fusion": {}, "source_val_accuracy": 0.1, "budget": budget},
        {"pair": "a:b", "seed": 2, "method": "x", "source_val_accuracy": 0.1, "budget": budget},  # no baseline
        {"pair": "a:b", "seed": 1, "method": "x", "source_val_accuracy": 0.1, "budget": other_budget},
        {"pair": "a+c:b", "seed": 1, "method": "none", "source_val_accuracy": 0.6, "budget": budget},
        {"pair": "a+c:b", "seed": 1, "method": "y", "source_val_accuracy": 0.4, "budget": budget},
    ]
    # 0.6 vs 0.4: z = 0.2 / sqrt(2 * 0.5 * 0.5 / n) = 4 on n = 200 rows, 2 sqrt(2) on 100, 2 on 50
    assert scan.source_rows(rows[8], 25) == 50 and scan.source_rows(rows[3], 25) == 50
    result = scan.scan(rows, per_domain=100)  # x on 100 rows, w on its own 50, y on 2 source domains x 100
    assert result.checked == 3
    assert [f[:3] for f in result.flagged] == [("a+c:b", 1, "y")]
    assert result.flagged[0][3] == pytest.approx(4.0) and "y has lost the source task" in result.flagged[0][4]
    assert result.highest_other_z == pytest.approx(2 * 2 ** 0.5)
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert scan.main([str(path), "--source_val_rows", "25"]) == 0  # x on 25 rows (z = sqrt(2)), w and y on 50 (z = 2)
    assert "3 method rows, 0 flagged, highest z of the rest 2.00" in capsys.readouterr().out


def test_fusions_are_scored_beside_their_members_and_resume(tmp_path):
    from hfadapt.benchmarking import ledger

    model_dir = saved_tiny_bert(tmp_path / "tiny")
    bench = load_benchmark("sentiment_benchmark")
    results = tmp_path / "rows.jsonl"
    flags = ["--model_name_or_path", str(model_dir), "--pairs", "books:dvd", "--multi_source_pairs", "--seeds", "1",
             "--methods", "none", "dann", "--max_steps", "2", "--max_length", "16", "--max_train_samples", "32",
             "--max_eval_samples", "32", "--mixed_precision", "no", "--label_free_validators", "dev",
             "--results", str(results), "--table", str(tmp_path / "table.md")]
    bench.main([*flags, "--fusions", "ensemble:none/dann"])
    rows = ledger.load_results(results)
    assert [r["method"] for r in rows] == ["none", "dann", "ensemble:none/dann"]
    fused = rows[2]
    assert fused["fusion"] == {"mode": "ensemble", "members": ["none", "dann"]}
    assert set(fused["recipe"]) == {"none", "dann"}
    assert 0.0 <= fused["target_accuracy"] <= 1.0 and "dev" in fused["validators"]
    # a fusion added later trains its members again and writes their rows again, marked, before its own (on one
    # machine the same rows); a rerun trains nothing
    bench.main([*flags, "--fusions", "ensemble:none/dann", "wise_ft:none/dann"])
    bench.main([*flags, "--fusions", "ensemble:none/dann", "wise_ft:none/dann"])
    rows = ledger.load_results(results)
    assert [r["method"] for r in rows] == ["none", "dann", "ensemble:none/dann", "none", "dann", "wise_ft:none/dann"]
    assert [r.get("trained_again", False) for r in rows] == [False, False, False, True, True, False]
    for first, again in ((rows[0], rows[3]), (rows[1], rows[4])):
        assert again["target_accuracy"] == first["target_accuracy"] and again["validators"] == first["validators"]
    table = (tmp_path / "table.md").read_text()
    assert "| ensemble:none/dann |" in table and "| wise_ft:none/dann |" in table


def test_a_greedy_soup_row_records_the_members_it_kept_by_source_validation(tmp_path):
    from hfadapt.benchmarking import ledger

    model_dir = saved_tiny_bert(tmp_path / "tiny")
    bench = load_benchmark("sentiment_benchmark")
    results = tmp_path / "rows.jsonl"
    bench.main(["--model_name_or_path", str(model_dir), "--pairs", "books:dvd", "--multi_source_pairs", "--seeds", "1",
                "--methods", "none", "dann", "--max_steps", "2", "--max_length", "16", "--max_train_samples", "32",
                "--max_eval_samples", "32", "--mixed_precision", "no", "--results", str(results), "--table",
                str(tmp_path / "table.md"), "--fusions", "greedy_soup:none/dann"])
    none, dann, soup = ledger.load_results(results)
    choice = soup["greedy_soup"]
    # each member's score is its own row's source-validation accuracy; the best comes first, and the soup's score
    # is that of the members it kept
    assert choice["member_source_val_accuracy"] == {"none": none["source_val_accuracy"],
                                                    "dann": dann["source_val_accuracy"]}
    best = max(["none", "dann"], key=lambda m: choice["member_source_val_accuracy"][m])  # ties: none, listed first
    assert choice["ingredients"][0] == best and set(choice["ingredients"]) <= {"none", "dann"}
    assert soup["source_val_accuracy"] >= choice["member_source_val_accuracy"][best]


def test_rescoring_kept_members_reproduces_their_rows_and_adds_validators(tmp_path):
    from hfadapt.benchmarking import ledger

    model_dir = saved_tiny_bert(tmp_path / "tiny")
    common = ["--model_name_or_path", str(model_dir), "--pairs", "books:dvd", "--seeds", "1", "--methods", "none",
              "dann", "--max_length", "16", "--max_train_samples", "32", "--max_eval_samples", "32",
              "--mixed_precision", "no", "--members_dir", str(tmp_path / "members")]
    grid, rescored = tmp_path / "grid.jsonl", tmp_path / "rescored.jsonl"
    load_benchmark("sentiment_benchmark").main([
        *common, "--multi_source_pairs", "--max_steps", "2", "--label_free_validators", "dev", "--results",
        str(grid), "--table", str(tmp_path / "table.md"), "--fusions", "ensemble:none/dann", "--members_wait_s", "0"])
    rescore = load_benchmark("rescore_members")
    flags = [*common, "--fusions", "ensemble:none/dann", "--label_free_validators", "dev", "im",
             "--results", str(rescored)]
    rescore.main(flags)
    rescore.main(flags)  # a rerun finds every row and scores nothing
    before = {r["method"]: r for r in ledger.load_results(grid)}
    after = ledger.load_results(rescored)
    assert [r["method"] for r in after] == ["none", "dann", "ensemble:none/dann"]
    for row in after:  # the kept weights are the rows' models: the same scores, and the new validator
        kept = before[row["method"]]
        assert row["target_accuracy"] == kept["target_accuracy"]
        assert row["source_val_accuracy"] == kept["source_val_accuracy"]
        assert row["validators"]["dev"] == pytest.approx(kept["validators"]["dev"], abs=1e-9)
        assert "im" in row["validators"] and row["rescored"]["members_dir"] == str(tmp_path / "members")
    # read with other splits than the grid's, the kept models would not score as their rows: refused, saying why
    other = [*common[:common.index("--max_length") + 1], "24", *common[common.index("--max_length") + 2:]]
    with pytest.raises(ValueError, match="read other data or another backbone: max_length differ"):
        rescore.main([*other, "--label_free_validators", "dev", "--results", str(tmp_path / "other.jsonl")])


def test_fusions_over_a_member_store_score_as_a_block_trained_whole(tmp_path, monkeypatch):
    from hfadapt.benchmarking import ledger
    from hfadapt.benchmarking.store import MemberStore

    model_dir = saved_tiny_bert(tmp_path / "tiny")
    bench = load_benchmark("sentiment_benchmark")
    flags = ["--model_name_or_path", str(model_dir), "--pairs", "books:dvd", "--multi_source_pairs", "--seeds", "1",
             "--methods", "none", "dann", "--max_steps", "2", "--max_length", "16", "--max_train_samples", "32",
             "--max_eval_samples", "32", "--mixed_precision", "no", "--label_free_validators", "dev",
             "--table", str(tmp_path / "table.md"), "--fusions", "ensemble:none/dann"]
    bench.main([*flags, "--results", str(tmp_path / "whole.jsonl")])
    members = tmp_path / "members"
    stored = tmp_path / "stored.jsonl"
    bench.main([*flags, "--results", str(stored), "--claim_dir", str(tmp_path / "claims"),
                "--members_dir", str(members)])
    whole, rows = ledger.load_results(tmp_path / "whole.jsonl"), ledger.load_results(stored)
    assert [r["method"] for r in rows] == ["none", "dann", "ensemble:none/dann"]
    assert all(MemberStore(members).kept_as("books:dvd", m, 1) is not None for m in ("none", "dann"))
    for key in ("target_accuracy", "source_val_accuracy", "validators"):  # the kept weights are the trained ones
        assert rows[2][key] == whole[2][key]

    # a fusion added later fuses the kept members without training them again (another process, its own claims)
    def no_training(*args, **kwargs):
        raise AssertionError("a member kept in the store was trained again")
    monkeypatch.setattr(bench, "train_run", no_training)
    bench.main([*flags, "wise_ft:none/dann", "--results", str(stored), "--claim_dir", str(tmp_path / "claims2"),
                "--members_dir", str(members)])
    assert [r["method"] for r in ledger.load_results(stored)][3:] == ["wise_ft:none/dann"]


def test_runs_kept_in_a_member_store_without_fusions_are_fused_later_without_training(tmp_path, monkeypatch):
    from hfadapt.benchmarking import ledger
    from hfadapt.benchmarking.store import MemberStore

    model_dir = saved_tiny_bert(tmp_path / "tiny")
    bench = load_benchmark("sentiment_benchmark")
    flags = ["--model_name_or_path", str(model_dir), "--pairs", "books:dvd", "--multi_source_pairs", "--seeds", "1",
             "--methods", "none", "dann", "--max_steps", "2", "--max_length", "16", "--max_train_samples", "32",
             "--max_eval_samples", "32", "--mixed_precision", "no", "--table", str(tmp_path / "table.md"),
             "--members_dir", str(tmp_path / "members")]
    results = tmp_path / "rows.jsonl"
    bench.main([*flags, "--results", str(results), "--claim_dir", str(tmp_path / "claims")])
    assert MemberStore(tmp_path / "members").kept_as("books:dvd", "dann", 1) is not None

    def no_training(*args, **kwargs):
        raise AssertionError("a run kept in the store was trained again")
    monkeypatch.setattr(bench, "train_run", no_training)
    bench.main([*flags, "--fusions", "uniform_soup:none/dann", "--results", str(results),
                "--claim_dir", str(tmp_path / "claims2")])
    assert [r["method"] for r in ledger.load_results(results)] == ["none", "dann", "uniform_soup:none/dann"]


def test_a_block_s_fusions_are_scored_once_its_members_are_kept_not_after_the_grid(tmp_path):
    from hfadapt.benchmarking import ledger

    model_dir = saved_tiny_bert(tmp_path / "tiny")
    bench = load_benchmark("sentiment_benchmark")
    results = tmp_path / "rows.jsonl"
    bench.main(["--model_name_or_path", str(model_dir), "--pairs", "books:dvd", "dvd:books", "--multi_source_pairs",
                "--seeds", "1", "--methods", "none", "--max_steps", "2", "--max_length", "16",
                "--max_train_samples", "32", "--max_eval_samples", "32", "--mixed_precision", "no",
                "--results", str(results), "--table", str(tmp_path / "table.md"),
                "--fusions", "uniform_soup:none", "--claim_dir", str(tmp_path / "claims"),
                "--members_dir", str(tmp_path / "members")])
    # a grid stopped part-way keeps the fused rows of every block it finished
    assert [(r["pair"], r["method"]) for r in ledger.load_results(results)] == [
        ("books:dvd", "none"), ("books:dvd", "uniform_soup:none"), ("dvd:books", "none"),
        ("dvd:books", "uniform_soup:none")]


def test_a_fusion_whose_member_never_reaches_the_store_is_left_unscored(tmp_path, capsys):
    from hfadapt.benchmarking import ledger

    model_dir = saved_tiny_bert(tmp_path / "tiny")
    bench = load_benchmark("sentiment_benchmark")
    claims = tmp_path / "claims"
    (claims / "books:dvd_dann_1").mkdir(parents=True)  # claimed by a process that will not finish it
    results = tmp_path / "rows.jsonl"
    bench.main(["--model_name_or_path", str(model_dir), "--pairs", "books:dvd", "--multi_source_pairs",
                "--seeds", "1", "--methods", "none", "--max_steps", "2", "--max_length", "16",
                "--max_train_samples", "32", "--max_eval_samples", "32", "--mixed_precision", "no",
                "--results", str(results), "--table", str(tmp_path / "table.md"), "--fusions", "ensemble:none/dann",
                "--claim_dir", str(claims), "--members_dir", str(tmp_path / "members"), "--members_wait_s", "0"])
    assert [r["method"] for r in ledger.load_results(results)] == ["none"]
    assert "ensemble:none/dann seed 1: not scored" in capsys.readouterr().out


def test_a_run_killed_part_way_resumes_from_its_checkpoint_to_the_uninterrupted_row(tmp_path, monkeypatch):
    from hfadapt.benchmarking import ledger

    model_dir = saved_tiny_bert(tmp_path / "tiny")
    bench = load_benchmark("sentiment_benchmark")
    flags = ["--model_name_or_path", str(model_dir), "--pairs", "books:dvd", "--multi_source_pairs", "--seeds", "1",
             "--methods", "none", "dann", "--max_steps", "6", "--eval_steps", "2", "--min_steps", "6",
             "--max_length", "16", "--max_train_samples", "32", "--max_eval_samples", "32", "--mixed_precision", "no",
             "--label_free_validators", "dev", "--table", str(tmp_path / "table.md")]
    bench.main([*flags, "--results", str(tmp_path / "whole.jsonl")])

    kill_after_checkpoint(monkeypatch, 4, method="dann")
    resumed, scratch = tmp_path / "resumed.jsonl", tmp_path / "runs"
    with pytest.raises(Killed):
        bench.main([*flags, "--results", str(resumed), "--scratch_dir", str(scratch)])
    monkeypatch.undo()
    assert [r["method"] for r in ledger.load_results(resumed)] == ["none"]
    bench.main([*flags, "--results", str(resumed), "--scratch_dir", str(scratch)])

    whole, rows = ledger.load_results(tmp_path / "whole.jsonl"), ledger.load_results(resumed)
    assert [r["method"] for r in rows] == ["none", "dann"]
    assert "resumed_from_step" not in rows[0] and rows[1]["resumed_from_step"] == 4
    for key in ("train_steps", "source_val_curve", "source_val_accuracy", "target_accuracy", "validators", "recipe"):
        assert rows[1][key] == whole[1][key], key
    assert list(scratch.iterdir()) == []  # a finished run's folder is removed
