"""Validator agreement with target accuracy over a grid's blocks (hfadapt.benchmarking.agreement), hand-computed."""

import math

import pytest

from hfadapt.benchmarking.agreement import agreement_table, validator_agreement


def row(pair, seed, method, target, dev, source_val=None):
    return {"pair": pair, "seed": seed, "method": method, "target_accuracy": target, "validators": {"dev": dev},
            "source_val_accuracy": source_val}


ROWS = [
    # block 1: dev ranks a > b > none, target b > a > none
    row("x:y", 1, "none", 0.80, -1.0), row("x:y", 1, "a", 0.82, 0.0), row("x:y", 1, "b", 0.83, -0.5),
    # block 2: dev ranks none > a > b, target a > none > b
    row("x:y", 2, "none", 0.80, 0.0), row("x:y", 2, "a", 0.81, -0.2), row("x:y", 2, "b", 0.79, -0.4),
    row("x:y", 3, "none", 0.80, 0.0),  # an incomplete block: left out
]


def test_agreement_is_the_hand_computed_rank_correlation_sides_and_picks():
    (dev,) = validator_agreement(ROWS, ["none", "a", "b"])
    assert dev.validator == "dev" and dev.blocks == 2
    # rho: block 1 ranks (1,3,2) against (1,2,3): 1 - 6*2/(3*8) = 0.5; block 2 (3,2,1) against (2,3,1): 0.5
    assert dev.spearman == pytest.approx(0.5)
    # sides: block 1 a above (yes), b above (yes); block 2 a below by dev, above by target (no), b below (yes)
    assert (dev.agree, dev.compared) == (3, 4)
    # picks: a in block 1 (+2), none in block 2 (0); oracle +3 and +1
    assert dev.picked_gain == pytest.approx(1.0) and dev.picked_se == pytest.approx(1.0)
    assert dev.oracle_gain == pytest.approx(2.0)
    table = agreement_table([dev])
    assert "| dev | 2 | +0.50 | 3 of 4 | +1.00 ± 1.00 | +2.00 |" in table


def test_source_validation_accuracy_is_scored_as_a_validator_and_the_latest_row_counts():
    rows = [{**r, "source_val_accuracy": 0.9 if r["method"] == "b" else 0.8} for r in ROWS]
    rows.append(row("x:y", 2, "b", 0.85, -0.4, source_val=0.9))  # b trained again in block 2: the row read
    by_name = {a.validator: a for a in validator_agreement(rows, ["none", "a", "b"])}
    assert set(by_name) == {"dev", "source_val"}
    assert by_name["source_val"].picked_gain == pytest.approx(4.0)  # b in both blocks: +3 and +5
    assert math.isnan(validator_agreement(rows[:3], ["none", "a", "b"])[0].picked_se)  # one block


def test_agreement_needs_source_only_and_another_model():
    with pytest.raises(ValueError, match="give 'none'"):
        validator_agreement(ROWS, ["a", "b"])
    with pytest.raises(ValueError, match="at least one other method"):
        validator_agreement(ROWS, ["none"])


def test_the_script_prints_the_table_of_a_results_file(tmp_path, capsys):
    from helpers import load_benchmark

    from hfadapt.benchmarking.ledger import append_row

    results = tmp_path / "rows.jsonl"
    for r in ROWS:
        append_row(results, r)
    load_benchmark("validator_agreement").main(["--results", str(results), "--methods", "none", "a", "b"])
    assert "| dev | 2 | +0.50 | 3 of 4 | +1.00 ± 1.00 | +2.00 |" in capsys.readouterr().out
