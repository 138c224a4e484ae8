import json
from pathlib import Path

import pytest

from hfadapt.data import available_domains, load_amazon_reviews, load_table, parse_review_file

REVIEW = """<review>
<unique_id>
A1:great:joe
</unique_id>
<rating>
5.0
</rating>
<title>
Great &amp; cheap
</title>
<review_text>
Works fine & sounds "good" &quot;really&quot;
</review_text>
</review>
<review>
<unique_id>
A2:meh:ann
</unique_id>
<rating>
4.0
</rating>
<title>
ok
</title>
<review_text>
Second one
</review_text>
</review>
"""


def write_review_domain(root: Path, domain: str):
    folder = root / domain
    folder.mkdir(parents=True)
    (folder / "positive.review").write_text(REVIEW)
    (folder / "negative.review").write_text(REVIEW.replace("5.0", "1.0").replace("4.0", "2.0"))


def test_parse_review_file_unescapes_entities(tmp_path):
    path = tmp_path / "positive.review"
    path.write_text(REVIEW)
    reviews = parse_review_file(path)
    assert [r["unique_id"] for r in reviews] == ["A1:great:joe", "A2:meh:ann"]
    assert reviews[0]["title"] == "Great & cheap"
    assert reviews[0]["review_text"] == 'Works fine & sounds "good" "really"'
    bad = tmp_path / "x.review"
    bad.write_text("not reviews")
    with pytest.raises(ValueError, match="no <review> block"):
        parse_review_file(bad)


def test_load_review_layout(tmp_path):
    write_review_domain(tmp_path, "kitchen")
    ds = load_amazon_reviews(tmp_path, "kitchen")
    assert len(ds) == 4 and ds.features["label"].names == ["negative", "positive"]
    assert ds["label"] == [0, 0, 1, 1] and ds["rating"] == [1.0, 2.0, 5.0, 4.0]
    assert available_domains(tmp_path) == ["kitchen"]


def test_load_jsonl_and_errors(tmp_path):
    rows = [{"text": "good", "label": 1}, {"text": "bad", "label": 0}]
    (tmp_path / "toys.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert load_amazon_reviews(tmp_path, "toys")["text"] == ["good", "bad"]
    (tmp_path / "broken.jsonl").write_text(json.dumps({"review": "x", "label": 1}))
    with pytest.raises(ValueError, match="lacks the field"):
        load_amazon_reviews(tmp_path, "broken")
    (tmp_path / "stars.jsonl").write_text(json.dumps({"text": "x", "label": 4}))
    with pytest.raises(ValueError, match="expected 0"):
        load_amazon_reviews(tmp_path, "stars")
    with pytest.raises(FileNotFoundError, match="domain 'garden' not found.*Domains there"):
        load_amazon_reviews(tmp_path, "garden")


def test_the_authors_review_folder_loads_as_one_table_of_domains(tmp_path):
    write_review_domain(tmp_path / "download", "kitchen")
    write_review_domain(tmp_path / "download", "books")
    table = load_table(str(tmp_path / "download"))
    assert len(table) == 8 and table.features["label"].names == ["negative", "positive"]
    assert list(table["domain"]) == ["books"] * 4 + ["kitchen"] * 4


def test_the_shipped_demo_data_is_the_three_domains_in_file_order():
    table = load_table("demo:amazon-msd")
    assert len(table) == 6000 and list(table["domain"][:1]) == ["books"]
    books = table.filter(lambda d: d == "books", input_columns="domain")
    assert len(books) == 2000 and sorted(set(books["label"])) == [0, 1] and set(books["rating"]) == {1.0, 2.0, 4.0, 5.0}
    assert books[0]["id"].startswith("0312355645")  # the first review of the authors' books file


def test_transfer_splits_follow_the_protocol():
    import datasets

    from hfadapt.data import transfer_splits

    labels = datasets.ClassLabel(names=["negative", "positive"])
    source = datasets.Dataset.from_dict({"text": [f"s{i}" for i in range(50)], "label": [i % 2 for i in range(50)]})
    target = datasets.Dataset.from_dict({"text": [f"t{i}" for i in range(30)], "label": [i % 2 for i in range(30)]})
    source, target = source.cast_column("label", labels), target.cast_column("label", labels)
    splits = transfer_splits(source, target, validation_fraction=0.2, seed=0)
    assert splits.sizes() == {"source_train": 40, "source_val": 10, "target_train": 30, "target_test": 30}
    assert "label" not in splits.target_train.column_names and "label" in splits.target_test.column_names
    assert sorted(splits.source_val["label"]) == [0] * 5 + [1] * 5  # stratified
    assert not set(splits.source_train["text"]) & set(splits.source_val["text"])
    small = transfer_splits(source, target, max_train_samples=8, max_eval_samples=4)
    assert small.sizes() == {"source_train": 8, "source_val": 4, "target_train": 8, "target_test": 4}
    lower = splits.map(lambda b: {"text": [t.upper() for t in b["text"]]}, batched=True)
    assert lower.target_train[0]["text"].startswith("T") and lower.label_names == ["negative", "positive"]
    with pytest.raises(ValueError, match="differ"):
        transfer_splits(source, target.cast_column("label", datasets.ClassLabel(names=["neg", "pos"])))
    with pytest.raises(ValueError, match="validation_fraction"):
        transfer_splits(source, target, validation_fraction=1.0)


def test_transfer_splits_with_several_source_domains():
    import datasets

    from hfadapt.data import transfer_splits

    labels = datasets.ClassLabel(names=["negative", "positive"])

    def domain(prefix, n):
        ds = datasets.Dataset.from_dict({"text": [f"{prefix}{i}" for i in range(n)],
                                         "label": [i % 2 for i in range(n)]})
        return ds.cast_column("label", labels)

    splits = transfer_splits({"books": domain("b", 50), "dvd": domain("d", 20)}, domain("t", 30), seed=0)
    assert isinstance(splits.source_train, datasets.DatasetDict) and list(splits.source_train) == ["books", "dvd"]
    assert splits.sizes() == {"source_train": 40 + 16, "source_val": 10 + 4, "target_train": 30, "target_test": 30}
    assert {t[0] for t in splits.source_val["text"]} == {"b", "d"}
    upper = splits.map(lambda b: {"text": [t.upper() for t in b["text"]]}, batched=True)
    assert upper.source_train["dvd"][0]["text"].startswith("D")


def test_label_ids_read_each_part_s_label_column_and_refuse_a_part_without_one():
    import datasets

    from hfadapt.data.mixing import label_ids

    a = datasets.Dataset.from_dict({"input_ids": [[1], [2]], "label": [0, 1]})
    b = datasets.Dataset.from_dict({"input_ids": [[3]], "labels": [1]})
    assert label_ids([a, b]) == [0, 1, 1]
    with pytest.raises(ValueError, match="no label column"):
        label_ids([a, a.remove_columns("label")])
