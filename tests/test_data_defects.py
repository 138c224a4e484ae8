"""Defects in a user's data files: each is refused (or warned about) before training in one line that names the
file and the line or row, instead of an internal error from datasets, pyarrow or the tokenizer."""

import bz2
import gzip
import json
import logging
import re
from pathlib import Path

import pytest

from hfadapt.data import DataArguments, load_transfer_splits
from hfadapt.data.amazon import load_amazon_reviews
from hfadapt.data.review_format import parse_review_file

GOOD = [{"text": f"w{10 + i} w{20 + i % 5}", "label": i % 2} for i in range(20)]
TARGET = [{"text": f"w{40 + i % 9} w5"} for i in range(20)]


@pytest.fixture(autouse=True)
def _datasets_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))


def jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def load(tmp_path, source: Path, target: Path | None = None):
    target = target or jsonl(tmp_path / "target.jsonl", TARGET)
    return load_transfer_splits(DataArguments(source_train_file=str(source), target_train_file=str(target)))


def test_one_string_label_among_integers_names_the_line(tmp_path):
    source = jsonl(tmp_path / "src.jsonl", [*GOOD[:5], {"text": "w7", "label": "pos"}, *GOOD[5:]])
    with pytest.raises(ValueError, match=r"src\.jsonl, line 6: 'label' holds 'pos' \(a string\) where the first row "
                                         r"holds 0 \(a number\), 1 such rows; make every 'label' value one kind"):
        load(tmp_path, source)


def test_an_empty_jsonl_is_refused_naming_it(tmp_path):
    source = tmp_path / "src.jsonl"
    source.write_text("")
    with pytest.raises(ValueError, match=r"src\.jsonl is empty: it holds no row"):
        load(tmp_path, source)


def test_an_empty_target_file_is_refused_naming_it(tmp_path):
    target = tmp_path / "tgt.csv"
    target.write_text("\n")
    with pytest.raises(ValueError, match=r"tgt\.csv is empty"):
        load(tmp_path, jsonl(tmp_path / "src.jsonl", GOOD), target)


def test_malformed_json_names_the_line(tmp_path):
    source = tmp_path / "src.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in GOOD[:3]) + '{"text": "w7", "label": 1\n')
    with pytest.raises(ValueError, match=r"src\.jsonl, line 4: not valid JSON \(Expecting ',' delimiter\); fix or "
                                         "remove that line"):
        load(tmp_path, source)


@pytest.mark.parametrize("suffix,opener", [(".jsonl", open), (".jsonl.gz", gzip.open), (".csv", open),
                                           (".jsonl.bz2", bz2.open)])
def test_invalid_utf8_names_the_line(tmp_path, suffix, opener):
    source = tmp_path / f"src{suffix}"
    if ".csv" in suffix:
        data = b"text,label\nw5,0\ncaf\xe9,1\n" + b"".join(f"w{10 + i},{i % 2}\n".encode() for i in range(20))
    else:
        data = (json.dumps(GOOD[0]) + "\n").encode() + b'{"text": "caf\xe9", "label": 1}\n'
    with opener(source, "wb") as handle:
        handle.write(data)
    line = 3 if ".csv" in suffix else 2
    name = re.escape(f"src{suffix}")
    with pytest.raises(ValueError, match=rf"{name}, line {line}: not valid UTF-8 \(byte 0xe9\); re-save the file "
                                         "as UTF-8"):
        load(tmp_path, source)


def test_null_text_names_the_line(tmp_path):
    source = jsonl(tmp_path / "src.jsonl", [*GOOD[:5], {"text": None, "label": 1}, *GOOD[5:]])
    with pytest.raises(ValueError, match=r"src\.jsonl, line 6: 'text' is null \(no text\), 1 such rows; fill in the "
                                         "text or remove those rows"):
        load(tmp_path, source)


def test_null_text_in_a_csv_target_names_row_and_line(tmp_path):
    target = tmp_path / "tgt.csv"
    target.write_text("text\n" + "".join(f"w{10 + i}\n" for i in range(4)) + '""\n' + "w5\n")
    with pytest.raises(ValueError, match=r"tgt\.csv, row 5 \(line 6\): 'text' is null"):
        load(tmp_path, jsonl(tmp_path / "src.jsonl", GOOD), target)


def test_labels_that_differ_only_in_spaces_or_case_are_refused_naming_them(tmp_path):
    source = jsonl(tmp_path / "src.jsonl", [{**r, "label": ["neg", "pos"][r["label"]]} for r in GOOD]
                   + [{"text": "w9", "label": "pos "}, {"text": "w8", "label": "Neg"}])
    with pytest.raises(ValueError, match=r"labels in 'label' differ only in spaces or case: \['Neg', 'neg'\]"):
        load(tmp_path, source)


def test_a_csv_row_after_fields_that_span_lines_is_named_by_the_line_it_starts_on(tmp_path):
    source = tmp_path / "src.tsv"  # reviews with paragraphs: a quoted field holds line breaks; a blank line between
    source.write_text('text\tlabel\n"w10\n\nw11"\t0\n\nw12\t1\n"w13\nw14"\t0\n""\t1\nw15\t0\n')
    with pytest.raises(ValueError, match=r"src\.tsv, row 4 \(line 9\): 'text' is null"):
        load(tmp_path, source)


def test_null_and_missing_labels_are_left_out_with_a_warning_naming_the_rows(tmp_path, caplog):
    source = jsonl(tmp_path / "src.jsonl", [*GOOD[:5], {"text": "w7", "label": None}, {"text": "w8"}, *GOOD[5:]])
    with caplog.at_level(logging.WARNING, logger="hfadapt.data.loading"):
        splits = load(tmp_path, source)
    assert sum(splits.sizes()[k] for k in ("source_train", "source_val")) == 20
    assert "the source 'src': 2 of 22 rows have no label and are left out (rows 6, 7)" in caplog.text


def test_duplicate_ids_give_a_warning_with_counts(tmp_path, caplog):
    source = jsonl(tmp_path / "src.jsonl", [dict(r, id=i // 2) for i, r in enumerate(GOOD)])
    with caplog.at_level(logging.WARNING, logger="hfadapt.data.loading"):
        load(tmp_path, source)
    assert "src.jsonl: 10 of 20 rows repeat an 'id' already used by another row" in caplog.text


def test_source_rows_that_are_also_in_the_target_give_a_warning_with_counts(tmp_path, caplog):
    target = jsonl(tmp_path / "tgt.jsonl", [{"text": r["text"]} for r in GOOD[:4]] + TARGET)
    with caplog.at_level(logging.WARNING, logger="hfadapt.data.loading"):
        load(tmp_path, jsonl(tmp_path / "src.jsonl", GOOD), target)
    assert "4 of 20 source rows" in caplog.text
    assert "also appear in the target" in caplog.text and "leaks target text into the labelled source" in caplog.text


def test_clean_files_give_no_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="hfadapt.data.loading"):
        load(tmp_path, jsonl(tmp_path / "src.jsonl", GOOD))
    assert caplog.text == ""


def test_invalid_utf8_in_review_files_is_replaced_with_a_warning_counting_the_reviews(tmp_path, caplog):
    path = tmp_path / "positive.review"
    path.write_bytes(b"<review>\n<review_text>\ncaf\xe9\n</review_text>\n</review>\n"
                     b"<review>\n<review_text>\nfine\n</review_text>\n</review>\n")
    with caplog.at_level(logging.WARNING, logger="hfadapt.data.review_format"):
        reviews = parse_review_file(path)
    assert [r["review_text"] for r in reviews] == ["caf\ufffd", "fine"]
    assert "positive.review is not valid UTF-8 (first at line 3): the bad bytes of 1 reviews were replaced" in \
        caplog.text


def test_a_null_label_in_an_amazon_jsonl_names_the_line(tmp_path):
    jsonl(tmp_path / "books.jsonl", [{"text": "a", "label": 1}, {"text": "b", "label": None}])
    with pytest.raises(ValueError, match=r"books\.jsonl, line 2: label None, 1 such rows; expected 0 \(negative\) or "
                                         r"1 \(positive\)"):
        load_amazon_reviews(tmp_path, "books")


def one_table(tmp_path, extra: list[dict]) -> DataArguments:
    """One table of domains 'a' (the source) and 'b' (the target) plus ``extra`` rows."""
    rows = [dict(r, domain="a") for r in GOOD] + [dict(r, label=i % 2, domain="b") for i, r in enumerate(TARGET)]
    table = jsonl(tmp_path / "all.jsonl", rows + extra)
    return DataArguments(dataset_name=str(table), domain_column_name="domain", source="a", target="b")


def test_overlap_and_id_checks_of_one_table_read_only_the_chosen_domains(tmp_path, caplog):
    # a repeated id in a domain neither side uses, and the source's texts again there
    unused = [{"text": "x", "label": 0, "domain": "c", "id": 1}, {"text": "y", "label": 1, "domain": "c", "id": 1}]
    unused += [dict(r, domain="c") for r in GOOD]
    with caplog.at_level(logging.WARNING, logger="hfadapt.data.loading"):
        splits = load_transfer_splits(one_table(tmp_path, unused))
    assert caplog.text == ""
    assert sum(splits.sizes()[k] for k in ("source_train", "source_val")) == 20


def test_overlap_within_one_table_counts_the_chosen_domains_rows(tmp_path, caplog):
    leaked = [dict(r, domain="b") for r in GOOD[:3]]
    with caplog.at_level(logging.WARNING, logger="hfadapt.data.loading"):
        load_transfer_splits(one_table(tmp_path, leaked))
    assert re.search(r"\b3 of 20 source rows", caplog.text)
