"""Loading the Multi-Domain Sentiment Dataset (Amazon reviews; Blitzer, Dredze & Pereira, ACL 2007) as `datasets`.

The shipped demo data (``hfadapt/demo_data/amazon-msd``, ``--dataset_name demo:amazon-msd``) is one table of
three domains that ``datasets.load_dataset`` reads. The authors' download is read here, in two layouts:

- ``<data_dir>/<domain>.jsonl``: one JSON object a line with at least ``text`` and ``label`` (0 negative,
  1 positive); ``title``, ``rating``, ``id`` are kept when present (:func:`load_amazon_reviews`).
- ``<data_dir>/[raw/]<domain>/{positive,negative}.review``: the authors' original files; a folder of them loads as
  one table with a ``domain`` column (:func:`load_review_folder`), which is what ``--dataset_name <folder>`` does.
"""

from __future__ import annotations

from pathlib import Path

import datasets

from .review_format import parse_review_file
from .transforms import arrow_column

AMAZON_TITLE = "Amazon Multi-Domain Sentiment (Blitzer et al., ACL 2007)"
LABEL_NAMES = ["negative", "positive"]
DATASET_HELP = (
    "The Multi-Domain Sentiment Dataset (Blitzer et al., ACL 2007) is distributed by its authors at "
    "https://www.cs.jhu.edu/~mdredze/datasets/sentiment/ (processed_acl / sorted_data_acl): unpack it so that "
    "<data_dir>/<domain>/positive.review and negative.review exist, or write <data_dir>/<domain>.jsonl with "
    "'text' and 'label' (0/1) fields."
)

_REQUIRED = ("text", "label")


def available_domains(data_dir: str | Path) -> list[str]:
    """Domains found in ``data_dir`` in either layout, sorted."""
    root = Path(data_dir)
    found = {p.stem for p in root.glob("*.jsonl")}
    for base in (root, root / "raw"):
        found |= {p.parent.name for p in base.glob("*/positive.review")}
    return sorted(found)


def _review_dir(root: Path, domain: str) -> Path | None:
    for base in (root / domain, root / "raw" / domain):
        if (base / "positive.review").is_file() and (base / "negative.review").is_file():
            return base
    return None


def _from_review_files(folder: Path, domain: str) -> datasets.Dataset:
    rows = []
    for label, name in enumerate(LABEL_NAMES):
        for review in parse_review_file(folder / f"{name}.review"):
            rating = review.get("rating")
            rows.append(
                {
                    "id": review.get("unique_id", ""),
                    "domain": domain,
                    "title": review.get("title", ""),
                    "text": review.get("review_text", ""),
                    "rating": float(rating) if rating else None,
                    "label": label,
                }
            )
    return datasets.Dataset.from_list(rows)


def load_amazon_reviews(data_dir: str | Path, domain: str, prefer: str = "jsonl") -> datasets.Dataset:
    """Load one domain's labelled reviews as a ``datasets.Dataset`` with a ``ClassLabel`` ``label`` column.

    Args:
        data_dir: folder holding ``<domain>.jsonl`` and/or ``[raw/]<domain>/*.review``.
        domain: e.g. ``"books"``, ``"dvd"``, ``"electronics"``, ``"kitchen"``.
        prefer: ``"jsonl"`` or ``"review"``: the layout to read when both exist.

    Returns:
        Columns ``text`` (str) and ``label`` (``ClassLabel(["negative", "positive"])``), plus ``title``,
        ``rating``, ``id``, ``domain`` when the source has them.

    Raises:
        FileNotFoundError: if the domain is in neither layout (lists the domains that are there).
        ValueError: if a JSONL file lacks ``text``/``label``, has labels other than 0/1, or is empty.
    """
    root = Path(data_dir)
    jsonl = root / f"{domain}.jsonl"
    review_dir = _review_dir(root, domain)
    if jsonl.is_file() and (prefer == "jsonl" or review_dir is None):
        from .loading import check_rows, load_files  # loading imports this module

        ds = load_files([str(jsonl)])  # names the line of bad JSON or UTF-8, and an empty file
        check_rows(ds, ["text"], "label", str(jsonl))
        source = str(jsonl)
    elif review_dir is not None:
        ds = _from_review_files(review_dir, domain)
        source = str(review_dir)
    else:
        raise FileNotFoundError(
            f"domain {domain!r} not found in {root}: expected {jsonl.name} or {domain}/positive.review and "
            f"negative.review. Domains there: {available_domains(root) or 'none'}. " + DATASET_HELP
        )
    missing = [c for c in _REQUIRED if c not in ds.column_names]
    if missing:
        raise ValueError(f"{source} lacks the field(s) {missing} (has {ds.column_names}). " + DATASET_HELP)
    if len(ds) == 0:
        raise ValueError(f"{source} holds no review")
    labels = arrow_column(ds, "label").to_pylist()
    bad = [i for i, v in enumerate(labels) if v not in (0, 1) or isinstance(v, bool)]
    if bad:
        where = f"line {bad[0] + 1}" if source.endswith(".jsonl") else f"row {bad[0] + 1}"
        raise ValueError(f"{source}, {where}: label {labels[bad[0]]!r}, {len(bad)} such rows; expected 0 (negative) "
                         "or 1 (positive)")
    return ds.cast_column("label", datasets.ClassLabel(names=LABEL_NAMES))


def is_review_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds the authors' layout: ``[raw/]<domain>/positive.review`` and ``negative.review``."""
    root = Path(folder)
    return any(_review_dir(root, p.parent.name) is not None
               for base in (root, root / "raw") for p in base.glob("*/positive.review"))


def load_review_folder(folder: str | Path) -> datasets.Dataset:
    """Every domain of the authors' ``.review`` layout in ``folder`` as one table (domains in sorted order), with
    ``domain``, ``text``, ``title``, ``rating``, ``id`` and a ``ClassLabel`` ``label`` (negative, positive).

    Raises:
        FileNotFoundError: if ``folder`` holds no domain in that layout.
    """
    root = Path(folder)
    domains = [d for d in available_domains(root) if _review_dir(root, d) is not None]
    if not domains:
        raise FileNotFoundError(f"{root} holds no <domain>/positive.review and negative.review. " + DATASET_HELP)
    parts = [_from_review_files(_review_dir(root, d), d) for d in domains]
    return datasets.concatenate_datasets(parts).cast_column("label", datasets.ClassLabel(names=LABEL_NAMES))
