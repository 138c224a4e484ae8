"""Bringing your own data: source and target domains from the Hub, local files or local dataset folders.

The one data path of the examples, ``hfadapt train``, ``hfadapt evaluate`` and the benchmark: load -> pick the
domains -> check the columns -> encode the labels -> split (:func:`~hfadapt.data.splits.transfer_splits`). The
arguments follow transformers' ``run_classification.py`` (``--train_file``, ``--dataset_name``,
``--text_column_name``, ``--label_column_name``) with a ``source_`` / ``target_`` prefix, since a transfer has two
datasets:

- a Hub id or a local folder (``--source_dataset_name``): ``datasets.load_dataset`` reads it (csv/json/parquet
  files, an ``imagefolder``, a folder with a dataset card), or ``datasets.load_from_disk`` if ``save_to_disk``
  wrote it, or hfadapt's reader if it holds the Amazon reviews' ``<domain>/{positive,negative}.review`` files;
- files (``--source_train_file``): ``.csv``, ``.tsv``, ``.json``, ``.jsonl``, ``.parquet``, optionally compressed
  (``.gz``, ``.bz2``, ``.xz``, ``.zst``); several joined by ``,``;
- one table holding several domains: ``--domain_column_name`` with ``--source`` / ``--target`` values
  (``--source books+dvd`` for several source domains). The shipped demo data (``demo:amazon-msd``) is one such
  table.

Labels may be strings or integers with any number of classes; they become a ``ClassLabel`` (names from a
``ClassLabel`` the data already has, else the sorted values), whose names the model's ``id2label`` takes. The
target needs no labels: without ``--target_test_file`` / ``--target_test_split`` its own labelled rows, if any, are
the test set (the Amazon protocol), else there is no target test and runs are judged by label-free validators.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import logging
import lzma
import math
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from .amazon import AMAZON_TITLE, is_review_folder, load_review_folder
from .splits import TransferSplits, transfer_splits
from .transforms import arrow_column

logger = logging.getLogger(__name__)

DEMO_DATA_DIR = Path(__file__).resolve().parents[1] / "demo_data"
DEMO_DATASETS = {"demo:amazon-msd": DEMO_DATA_DIR / "amazon-msd"}
"""``--dataset_name`` values that name the data shipped inside the package (no download)."""
DEMO_TITLES = {"demo:amazon-msd": AMAZON_TITLE}
FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet",
                 ".arrow": "arrow"}
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
LABEL = "label"
"""The column name labels get (the trainer reads ``label`` / ``labels``)."""
OWN_DATA_KEYS = ("dataset_name", "train_file", "source_dataset_name", "source_train_file", "target_dataset_name",
                 "target_train_file")
"""Arguments that name data: set by a user, they replace the recipe's :data:`RECIPE_DATA_KEYS` as a whole."""
RECIPE_DATA_KEYS = ("dataset_name", "dataset_config_name", "train_file", "domain_column_name", "source", "target")
"""A recipe's choice of data (the demo table and its domains), dropped when a user names data of their own."""


@dataclass
class DataArguments:
    """Where the source and target data come from and which columns hold what; shared by the examples and
    ``hfadapt train``.

    Each side is a dataset (``*_dataset_name``: a Hub id, a local folder or ``demo:amazon-msd``) or files
    (``*_train_file``). ``dataset_name`` / ``train_file`` name one table for both sides (with
    ``domain_column_name``). Raises ``ValueError`` from ``__post_init__`` on contradictory settings.
    """

    dataset_name: str | None = field(
        default=None,
        metadata={"help": "One dataset for both sides (a Hub id, a local folder, or demo:amazon-msd, the shipped "
                  "reviews), split into domains by --domain_column_name; the default of --source_dataset_name and "
                  "--target_dataset_name."},
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of --dataset_name."})
    train_file: str | None = field(
        default=None, metadata={"help": "One file (csv, tsv, json, jsonl, parquet; ',' joins several) for both "
                                "sides, split into domains by --domain_column_name."},
    )
    source_dataset_name: str | None = field(
        default=None, metadata={"help": "Labelled source data: a Hub id or a local dataset folder."}
    )
    source_dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of the source."})
    source_split: str = field(default="train", metadata={"help": "Split of the source dataset to train on."})
    source_train_file: str | None = field(
        default=None, metadata={"help": "Labelled source data: csv, tsv, json, jsonl or parquet file(s), ',' joined."}
    )
    source_validation_file: str | None = field(
        default=None, metadata={"help": "Labelled source validation file (else validation_fraction is split off)."}
    )
    source_validation_split: str | None = field(
        default=None, metadata={"help": "Split of the source dataset for validation (else validation_fraction)."}
    )
    target_dataset_name: str | None = field(
        default=None, metadata={"help": "Unlabelled target data: a Hub id or a local dataset folder."}
    )
    target_dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of the target."})
    target_split: str = field(default="train", metadata={"help": "Split of the target dataset to adapt on."})
    target_train_file: str | None = field(
        default=None, metadata={"help": "Unlabelled target data: file(s) as --source_train_file; a label column in "
                                "them is dropped before training."},
    )
    target_test_file: str | None = field(
        default=None, metadata={"help": "Labelled target test file (optional). Without it and --target_test_split, "
                                "the target's own labelled rows, if any, are the test set."},
    )
    target_test_split: str | None = field(
        default=None, metadata={"help": "Split of the target dataset with labels, for the final test (optional)."}
    )
    domain_column_name: str | None = field(
        default=None, metadata={"help": "Column naming each row's domain in a table of several domains; --source "
                                "and --target then give its values."},
    )
    source: str | None = field(
        default=None, metadata={"help": "With --domain_column_name: the source domain's value, or several joined by "
                                "'+' for multi-source adaptation (books+dvd)."},
    )
    target: str | None = field(
        default=None, metadata={"help": "With --domain_column_name: the target domain's value."}
    )
    text_column_name: str = field(
        default="text", metadata={"help": "Text column, or two joined by ',' for sentence pairs (premise,hypothesis)."}
    )
    label_column_name: str = field(
        default="label", metadata={"help": "Label column: strings or integers, any number of classes."}
    )
    image_column_name: str | None = field(
        default=None, metadata={"help": "Image column, for image data (imagefolder and Hub datasets: 'image')."}
    )
    max_length: int = field(default=128, metadata={"help": "Tokens per text (pair) after truncation."})
    validation_fraction: float = field(
        default=0.2, metadata={"help": "Share of the source held out for validation, stratified by label."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many source-train and target-train rows (quick runs)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many source-validation and target-test rows."}
    )
    license: str | None = field(default=None, metadata={"help": "License of the model, for its card (e.g. mit)."})
    language: str | None = field(
        default=None, metadata={"help": "Language(s) of the data, for the card (en, or several: 'en,de')."}
    )

    def __post_init__(self):
        for side in ("", "source_", "target_"):
            name, files = getattr(self, f"{side}dataset_name"), getattr(self, f"{side}train_file")
            if name and files:
                raise ValueError(f"--{side}dataset_name and --{side}train_file both given ({name!r}, {files!r}); "
                                 "pick one")
        if self.source_validation_file and self.source_validation_split:
            raise ValueError("--source_validation_file and --source_validation_split both given; pick one")
        if self.target_test_file and self.target_test_split:
            raise ValueError("--target_test_file and --target_test_split both given; pick one")
        if not 1 <= len(self.text_columns) <= 2:
            raise ValueError(f"--text_column_name takes one column or two joined by ',' (a sentence pair), got "
                             f"{self.text_column_name!r}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if self.domain_column_name is None and self.source and "+" in self.source:
            raise ValueError(f"--source {self.source!r} names several source domains: that needs a table with a "
                             "domain column, --domain_column_name")
        if self.domain_column_name is not None and not (self.source and self.target):
            raise ValueError(f"--domain_column_name {self.domain_column_name!r} needs --source and --target: the "
                             "values of that column to train on and to adapt to")

    @property
    def text_columns(self) -> list[str]:
        """The text column, or the two of a sentence pair."""
        return [c.strip() for c in self.text_column_name.split(",") if c.strip()]

    @property
    def source_names(self) -> list[str]:
        """Names of the source domain(s): the ``--source`` values, else the source dataset's or file's name."""
        if self.source:
            return self.source.split("+")
        return [_domain_label(self._side("source")[0], self._side("source")[2])]

    @property
    def target_name(self) -> str:
        """Name of the target domain: ``--target``, else the target dataset's or file's name."""
        if self.target:
            return self.target
        return _domain_label(self._side("target")[0], self._side("target")[2])

    def _side(self, side: str) -> tuple[str | None, str | None, str | None]:
        """``(dataset_name, config_name, files)`` of ``side``, falling back to the shared ``dataset_name`` /
        ``train_file`` (and, for the target, to the source's table in domain-column mode)."""
        name, config = getattr(self, f"{side}_dataset_name"), getattr(self, f"{side}_dataset_config_name")
        files = getattr(self, f"{side}_train_file")
        if name or files:
            return name, config, files
        if self.dataset_name or self.train_file:
            return self.dataset_name, self.dataset_config_name, self.train_file
        if side == "target" and self.domain_column_name is not None:
            return self._side("source")
        return None, None, None

    def check_sources(self) -> None:
        """Raise ``ValueError`` unless both sides name data, and unless they differ (or a domain column splits
        one table), in one line saying which flags to set."""
        for side in ("source", "target"):
            name, _, files = self._side(side)
            if not (name or files):
                raise ValueError(f"no {side} data: set --{side}_dataset_name or --{side}_train_file (or one table "
                                 "with --dataset_name/--train_file and --domain_column_name)")
        if self.domain_column_name is None and self._side("source") == self._side("target"):
            raise ValueError("source and target are the same data: give the target its own --target_dataset_name "
                             "/ --target_train_file, or split one table with --domain_column_name, --source, "
                             "--target")

    def datasets_used(self) -> list[str]:
        """Hub ids of the datasets named (for a model card's ``datasets:``): local folders, files and the demo
        data are left out."""
        names = [self.dataset_name, self.source_dataset_name, self.target_dataset_name]
        return list(dict.fromkeys(n for n in names if n and _is_hub_id(n)))

    def title(self) -> str:
        """A human-readable name of the data for cards and results: the demo data's citation, Hub ids, or the
        file and folder names (never a full path)."""
        parts = []
        for side in ("source", "target"):
            name, _, files = self._side(side)
            parts.append(DEMO_TITLES.get(name) or _data_label(name, files))
        return parts[0] if parts[0] == parts[1] else f"{parts[0]} (source), {parts[1]} (target)"


def _is_hub_id(name: str) -> bool:
    return name not in DEMO_DATASETS and not Path(name).expanduser().exists() and name.count("/") <= 1


def _data_label(name: str | None, files: str | None) -> str:
    """A short name of a dataset or of files: the Hub id, or the last path component(s) without directories."""
    if name:
        return name if name in DEMO_DATASETS or _is_hub_id(name) else Path(name).name
    return ",".join(Path(f.strip()).name for f in (files or "").split(",") if f.strip())


def _domain_label(name: str | None, files: str | None) -> str:
    """A domain's name from its data: the dataset's label, or the first file's name without its extensions."""
    label = _data_label(name, files).split(",")[0]
    if files:
        for compression in COMPRESSIONS:
            label = label.removesuffix(compression)
        label = label.rsplit(".", 1)[0]
    return label


def builder_of(path: str | Path) -> tuple[str, dict]:
    """The ``datasets`` builder and its keyword arguments for a data file, by its extension (``.gz`` etc. ignored).

    Raises:
        ValueError: for an extension no builder reads, naming the ones supported.
    """
    name = Path(path).name.lower()
    for compression in COMPRESSIONS:
        name = name.removesuffix(compression)
    suffix = Path(name).suffix
    if suffix not in FILE_BUILDERS:
        raise ValueError(f"cannot read {path}: a data file must end in one of {sorted(FILE_BUILDERS)} "
                         f"(optionally compressed: {list(COMPRESSIONS)})")
    return FILE_BUILDERS[suffix], {"delimiter": "\t"} if suffix == ".tsv" else {}


def load_files(files: str | list[str]) -> datasets.Dataset:
    """Rows of one or several data files of one format (``"a.csv,b.csv"`` or a list), concatenated in order.

    Raises:
        FileNotFoundError: naming a file that does not exist.
        ValueError: for an unsupported extension or files of different formats.
    """
    paths = [f.strip() for f in files.split(",")] if isinstance(files, str) else [str(f) for f in files]
    paths = [p for p in paths if p]
    for path in paths:
        if not Path(path).expanduser().is_file():
            raise FileNotFoundError(f"data file {path} does not exist")
    if not paths:
        raise ValueError("no data file named")
    formats = [builder_of(p) for p in paths]
    if any(f != formats[0] for f in formats):
        raise ValueError(f"data files must all be one format, got {paths}")
    builder, kwargs = formats[0]
    for path in paths:
        check_file_bytes(path)
    try:
        return datasets.load_dataset(builder, data_files=[str(Path(p).expanduser()) for p in paths], split="train",
                                     **kwargs)
    except Exception as err:  # datasets wraps the parser's error in DatasetGenerationError, naming no file or line
        if builder == "json":
            for path in paths:
                bad = first_bad_json_line(path)
                if bad is not None:
                    raise ValueError(f"{path}, line {bad[0]}: not valid JSON ({bad[1]}); fix or remove that line") \
                        from None
        cause = err.__cause__ or err
        raise ValueError(f"cannot read {', '.join(paths)}: {type(cause).__name__}: {cause}") from err


_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _read_bytes(path: str | Path) -> bytes | None:
    """The (decompressed) bytes of a data file, or ``None`` for a compression this cannot open (``.zst``)."""
    path = Path(path).expanduser()
    opener = _OPENERS.get(path.suffix.lower())
    if opener is None and path.suffix.lower() in COMPRESSIONS:
        return None
    with (opener or open)(path, "rb") as handle:
        return handle.read()


def check_file_bytes(path: str | Path) -> None:
    """Refuse a text data file (csv, tsv, json, jsonl) that is empty or not valid UTF-8, naming the line.

    Parquet and arrow files are binary and not checked here.

    Raises:
        ValueError: ``<path> is empty ...`` or ``<path>, line N: not valid UTF-8 (byte 0x..) ...``.
    """
    if builder_of(path)[0] not in ("csv", "json"):
        return
    data = _read_bytes(path)
    if data is None:
        return
    if not data.strip():
        raise ValueError(f"{path} is empty: it holds no row; put the data in it, or leave the file out")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise ValueError(f"{path}, line {line}: not valid UTF-8 (byte 0x{data[err.start]:02x}); re-save the file as "
                         "UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None


def first_bad_json_line(path: str | Path) -> tuple[int, str] | None:
    """``(line number, reason)`` of the first line of a ``.json`` / ``.jsonl`` file that is not valid JSON (a
    ``.json`` holding one document: the line of its first error), or ``None`` if every line parses."""
    data = _read_bytes(path)
    if data is None:
        return None
    text = data.decode("utf-8", errors="replace")
    if text.lstrip().startswith("["):
        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            return err.lineno, err.msg
        return None
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                json.loads(line)
            except json.JSONDecodeError as err:
                return number, err.msg
    return None


def _is_saved_dataset(folder: Path) -> bool:
    """Whether ``save_to_disk`` wrote ``folder`` (a ``Dataset`` or a ``DatasetDict``)."""
    return (folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()


def _pick_split(data: datasets.DatasetDict, split: str, where: str) -> datasets.Dataset:
    if split not in data:
        raise ValueError(f"{where} has no split {split!r}; its splits: {sorted(data)}")
    return data[split]


def load_table(name: str | None = None, config: str | None = None, split: str = "train",
               files: str | list[str] | None = None) -> datasets.Dataset:
    """One split of a dataset, or the rows of data files, as a ``datasets.Dataset``.

    Args:
        name: ``demo:amazon-msd`` (shipped), a local folder (``save_to_disk`` output, a folder ``load_dataset``
            reads such as an ``imagefolder`` or files with a dataset card, or the Amazon ``.review`` layout), a
            data file, or a Hub id (needs the network, or the datasets cache).
        config: the dataset's configuration name, if it has several.
        split: the split (``"train"``; ``load_dataset`` slicing such as ``"train[:80%]"`` works for Hub ids and
            folders it reads).
        files: data files instead of ``name`` (see :func:`load_files`).

    Raises:
        ValueError: if neither ``name`` nor ``files`` is given, or the split does not exist (listing the splits).
        FileNotFoundError: for a missing file.
    """
    if files:
        return load_files(files)
    if not name:
        raise ValueError("no data named: give a dataset name or data files")
    path = Path(DEMO_DATASETS.get(name, name)).expanduser()
    if path.is_file():
        return load_files([str(path)])
    if path.is_dir():
        if _is_saved_dataset(path):
            data = datasets.load_from_disk(str(path))
            return _pick_split(data, split, str(path)) if isinstance(data, datasets.DatasetDict) else data
        if is_review_folder(path):
            return load_review_folder(path)
        return datasets.load_dataset(str(path), config, split=split)
    try:
        return datasets.load_dataset(name, config, split=split)
    except (FileNotFoundError, ConnectionError) as err:
        raise FileNotFoundError(f"dataset {name!r} is neither a local file or folder nor reachable on the Hub "
                                f"({type(err).__name__}: {err})") from None


def require_columns(ds: datasets.Dataset, columns: list[str], what: str, flag: str) -> None:
    """Raise ``ValueError`` naming the ``columns`` that ``ds`` lacks and the columns it has.

    Args:
        what: the data's name in the message (``"the source"``); flag: the argument that names the column.
    """
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise ValueError(f"{what} has no column {', '.join(repr(c) for c in missing)} ({flag}); its columns are "
                         f"{ds.column_names}")


def select_domain(ds: datasets.Dataset, column: str, values: str | list[str], what: str) -> datasets.Dataset:
    """The rows of ``ds`` whose ``column`` equals one of ``values`` (compared as strings), in their order.

    Raises:
        ValueError: if the column is missing or no row has a value, listing the values there are.
    """
    require_columns(ds, [column], what, "--domain_column_name")
    wanted = {values} if isinstance(values, str) else set(values)
    rows = ds.filter(lambda v: str(v) in wanted, input_columns=column, desc=f"{what}: {'+'.join(sorted(wanted))}")
    if len(rows) == 0:
        there = sorted({str(v) for v in ds.unique(column)})
        raise ValueError(f"{what}: no row has {column} = {' or '.join(sorted(wanted))}; the values there are {there}")
    return rows


def _place(origin: str, index: int) -> str:
    """Where row ``index`` (0-based) of data read from ``origin`` is: the line of a single JSON-lines file, the row
    (and line, after the header) of a single csv/tsv file, else the row counted from 1."""
    files = [f.strip() for f in origin.split(",") if f.strip()]
    if len(files) == 1 and Path(files[0]).is_file():
        kind = builder_of(files[0])[0] if Path(files[0]).suffix.lower() != ".json" else "json-doc"
        if kind == "json":
            return f"{files[0]}, line {index + 1}"
        if kind == "csv":
            line = _csv_line(files[0], index)
            return f"{files[0]}, row {index + 1}" + (f" (line {line})" if line is not None else "")
    return f"{origin}, row {index + 1}"


def _csv_line(path: str, index: int) -> int | None:
    """The line on which data row ``index`` (0-based, after the header) of the csv/tsv file ``path`` starts: a
    quoted field may span lines (reviews with paragraphs), so rows and lines are counted apart; blank lines are
    skipped, as the reader does. ``None`` if the file cannot be opened here or holds fewer rows."""
    data = _read_bytes(path)
    if data is None:
        return None
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="replace"), newline=""),
                        delimiter=builder_of(path)[1].get("delimiter", ","))
    start, record = 1, -1  # record -1 is the header
    for fields in reader:
        if fields:
            if record == index:
                return start
            record += 1
        start = reader.line_num + 1
    return None


def _kind(value) -> str:
    if isinstance(value, str):
        return "a string"
    return "a number" if isinstance(value, int | float) else type(value).__name__


def check_rows(ds: datasets.Dataset, columns: list[str], label: str | None, origin: str) -> None:
    """Refuse rows that would fail later with an error naming no file: a null in a content column (text), and a
    column whose values are of mixed kinds (numbers and strings, which ``datasets`` keeps as raw JSON).

    Args:
        columns: the content (text) columns; label: the label column, if the rows are labelled; origin: the
            file(s) or dataset the rows come from, for the message.

    Raises:
        ValueError: naming the file and the line (or row) of the first bad value, and how many rows are bad.
    """
    import pyarrow.compute as pc

    for column in [*columns, *([label] if label else [])]:
        if column not in ds.column_names:
            continue
        feature = ds.features[column]
        if isinstance(feature, datasets.Json):
            values = [None if v is None else json.loads(v) for v in arrow_column(ds, column).to_pylist()]
            first = next((v for v in values if v is not None), None)
            bad = [i for i, v in enumerate(values) if v is not None and _kind(v) != _kind(first)]
            if bad:
                value = values[bad[0]]
                raise ValueError(f"{_place(origin, bad[0])}: {column!r} holds {value!r} ({_kind(value)}) where the "
                                 f"first row holds {first!r} ({_kind(first)}), {len(bad)} such rows; make every "
                                 f"{column!r} value one kind")
        if column in columns:
            stored = arrow_column(ds, column)
            nulls = stored.null_count
            if nulls:
                index = pc.indices_nonzero(pc.is_null(stored)).to_pylist()[0]
                raise ValueError(f"{_place(origin, index)}: {column!r} is null (no text), {nulls} such rows; fill in "
                                 "the text or remove those rows")


def warn_duplicates_and_overlap(sources: list[datasets.Dataset], target: datasets.Dataset, columns: list[str],
                                origins: tuple[str, str], id_column: str = "id") -> tuple[int, int]:
    """Log a warning, with counts, for duplicate ids within the source or the target, and for source rows whose
    text (``columns``) also appears in the target: such an overlap leaks target text into the labelled source.

    Returns:
        ``(duplicate ids, source rows also in the target)``.
    """
    duplicates = 0
    for rows, origin in ((datasets.concatenate_datasets(sources) if len(sources) > 1 else sources[0], origins[0]),
                         (target, origins[1])):
        if id_column in rows.column_names:
            ids = [v for v in arrow_column(rows, id_column).to_pylist() if v is not None and v != ""]
            repeated = len(ids) - len(set(ids))
            if repeated:
                duplicates += repeated
                logger.warning("%s: %d of %d rows repeat an %r already used by another row", origin, repeated,
                               len(ids), id_column)
    if not all(c in target.column_names and all(c in s.column_names for s in sources) for c in columns):
        return duplicates, 0

    def texts(rows):
        return zip(*(arrow_column(rows, c).to_pylist() for c in columns), strict=True)

    target_texts = set(texts(target))
    overlap = sum(sum(1 for t in texts(s) if t in target_texts) for s in sources)
    if overlap:
        total = sum(len(s) for s in sources)
        logger.warning("%d of %d source rows (%s) also appear in the target (%s): overlap leaks target text into "
                       "the labelled source and inflates target accuracy; remove them from the source", overlap,
                       total, origins[0], origins[1])
    return duplicates, overlap


def _label_value(value):
    """A label as a hashable value: ``None`` for a missing one (``None``, NaN), integral floats (a CSV column with
    gaps reads as float) as ints."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _label_strings(ds: datasets.Dataset, column: str) -> list[str | None]:
    """The labels of ``ds`` as class-name strings (a ``ClassLabel``'s names, else ``str`` of each value)."""
    feature = ds.features[column]
    if isinstance(feature, datasets.ClassLabel):
        return [feature.names[v] if v is not None and v >= 0 else None for v in ds[column]]
    return [None if (v := _label_value(x)) is None else str(v) for x in ds[column]]


def class_names(sets: list[datasets.Dataset], column: str) -> list[str]:
    """The class names of labelled sets: the first set's ``ClassLabel`` names if it has one, else the sorted
    distinct values of all sets (numerically for integers), as strings.

    Raises:
        ValueError: if the sets hold no label at all, mix numbers and strings, or hold string labels that differ
            only in spaces or case (``"pos"`` and ``"pos "``).
    """
    feature = sets[0].features[column]
    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names)
    values = {v for ds in sets for x in ds.unique(column) if (v := _label_value(x)) is not None}
    if not values:
        raise ValueError(f"the source's label column {column!r} holds no label")
    if all(isinstance(v, bool | int) for v in values):
        return [str(v) for v in sorted(values)]
    if any(not isinstance(v, str) for v in values):
        raise ValueError(f"labels in {column!r} mix numbers and strings ({sorted(map(str, values))[:10]}); "
                         "make them all one kind")
    alike = {}
    for v in sorted(values):
        alike.setdefault(" ".join(v.split()).casefold(), []).append(v)
    clash = next((names for names in alike.values() if len(names) > 1), None)
    if clash is not None:  # "pos" and "pos " would be two classes, the second of a few rows
        raise ValueError(f"labels in {column!r} differ only in spaces or case: {clash}; write each class one way "
                         "(strip the spaces, one case)")
    return sorted(values)


def encode_labels(ds: datasets.Dataset, column: str, names: list[str], what: str) -> datasets.Dataset:
    """``ds`` with its labels as ``ClassLabel(names)`` ids in a column named ``label``, rows without a label
    dropped (the whole set kept unchanged, apart from the name, if it already has that ``ClassLabel``).

    Raises:
        ValueError: if ``ds`` has labels that are not among ``names``, naming them (the label sets differ).
    """
    feature = datasets.ClassLabel(names=list(names))
    if ds.features[column] == feature:
        encoded = ds
    else:
        strings = _label_strings(ds, column)
        unknown = sorted({s for s in strings if s is not None} - set(names))
        if unknown:
            raise ValueError(f"{what} has labels {unknown} that the source does not have (source labels: "
                             f"{list(names)}); the label sets must match")
        index = {n: i for i, n in enumerate(names)}
        ids = [index[s] if s is not None else -1 for s in strings]
        encoded = ds.remove_columns([c for c in {column, LABEL} if c in ds.column_names]).add_column(LABEL, ids)
        kept = [i for i, v in enumerate(ids) if v >= 0]
        if len(kept) < len(ids):
            missing = [i + 1 for i, v in enumerate(ids) if v < 0]
            logger.warning("%s: %d of %d rows have no label and are left out (rows %s%s)", what, len(missing),
                           len(ids), ", ".join(map(str, missing[:5])), ", ..." if len(missing) > 5 else "")
            encoded = encoded.select(kept)
        encoded = encoded.cast_column(LABEL, feature)
        column = LABEL
    if column != LABEL:
        if LABEL in encoded.column_names:
            encoded = encoded.remove_columns(LABEL)
        encoded = encoded.rename_column(column, LABEL)
    return encoded


def require_two_classes(sources: dict[str, datasets.Dataset], names: list[str], column: str) -> None:
    """Check that the labelled source rows (``sources``, each with ``ClassLabel(names)`` ids in ``label``) hold at
    least two classes, which a classifier needs; ``column`` is the user's label column, for the message.

    Raises:
        ValueError: naming the one class (or none) the source rows hold and what to check.
    """
    present = sorted({i for ds in sources.values() for i in ds.unique(LABEL) if i is not None and i >= 0})
    if len(present) < 2:
        found = ", ".join(repr(names[i]) for i in present) or "none"
        raise ValueError(f"the source's labelled rows (column {column!r}) are all of one class ({found}): a "
                         "classifier needs rows of at least two classes; check --label_column_name, and that the "
                         "source holds every class (a file sorted by label and cut short holds one)")


def has_labels(ds: datasets.Dataset, column: str) -> bool:
    """Whether ``ds`` has ``column`` with at least one label in it."""
    if column not in ds.column_names:
        return False
    return any(_label_value(v) is not None and v != -1 for v in ds.unique(column))


def _origin(args: DataArguments, side: str) -> str:
    """The file(s) or dataset that ``side`` reads, for messages."""
    name, _, files = args._side(side)
    return files or str(DEMO_DATASETS.get(name, name))


def _load_side(args: DataArguments, side: str, split: str) -> datasets.Dataset:
    name, config, files = args._side(side)
    return load_table(name, config, split, files)


def load_transfer_splits(args: DataArguments, seed: int = 0) -> TransferSplits:
    """Load, check and split the source and target data that ``args`` name.

    The source is split ``1 - validation_fraction`` / ``validation_fraction`` (stratified) unless a validation
    file or split is given; the target's label column, if any, is dropped from its training rows; the target test
    set is ``target_test_file`` / ``target_test_split``, else the target's labelled rows, else ``None`` (no target
    labels: a run is judged by label-free validators and the proxy A-distance).

    Returns:
        :class:`~hfadapt.data.TransferSplits` whose labels are a ``ClassLabel`` named ``label`` on every labelled
        set and whose text (or image) columns are as in the data; ``source_train`` is a ``DatasetDict`` with several
        source domains.

    Raises:
        ValueError: before any training, in one line: no data named, a missing column (listing those there are), a
            domain value not in the table, labels of the target test set that the source lacks.
    """
    args.check_sources()
    content = [args.image_column_name] if args.image_column_name else args.text_columns
    label, domain = args.label_column_name, args.domain_column_name
    content_flag = "--image_column_name" if args.image_column_name else "--text_column_name"

    def checked(ds, what, labelled):
        require_columns(ds, content, what, content_flag)
        if labelled:
            require_columns(ds, [label], what, "--label_column_name")
        return ds

    origins = tuple(_origin(args, side) for side in ("source", "target"))
    source_table = _load_side(args, "source", args.source_split)
    check_rows(source_table, content if not args.image_column_name else [], label, origins[0])
    if domain is not None:
        sources = {name: select_domain(source_table, domain, name, f"the source ({domain} = {name})")
                   for name in args.source_names}
    else:
        sources = {args.source_names[0]: source_table}
    if args.target is not None and args.target in sources:
        raise ValueError(f"--source {args.source!r} and --target {args.target!r} must be different domains")
    sources = {name: checked(ds, f"the source {name!r}", True) for name, ds in sources.items()}

    target = _load_side(args, "target", args.target_split)
    if args._side("target") != args._side("source"):
        check_rows(target, content if not args.image_column_name else [],
                   label if label in target.column_names else None, origins[1])
    if domain is not None and domain in target.column_names:
        target = select_domain(target, domain, args.target, f"the target ({domain} = {args.target})")
    target = checked(target, "the target", False)

    def labelled_set(file, split, side, domain_values, what):
        """An optional labelled set (source validation, target test) from its own file or a split of ``side``."""
        if not (file or split):
            return None
        ds = load_files(file) if file else _load_side(args, side, split)
        if domain is not None and domain in ds.column_names:
            ds = select_domain(ds, domain, domain_values, what)
        origin = origins[0] if side == "source" else origins[1]
        check_rows(ds, content if not args.image_column_name else [], label, file or f"{origin} [{split}]")
        return checked(ds, what, True)

    source_val = labelled_set(args.source_validation_file, args.source_validation_split, "source",
                              args.source_names, "the source validation set")
    target_test = labelled_set(args.target_test_file, args.target_test_split, "target", args.target,
                               "the target test set")
    if target_test is None and has_labels(target, label):
        target_test = target  # the Amazon protocol: the target's rows, labels hidden in training, are its test set

    if not args.image_column_name:
        warn_duplicates_and_overlap(list(sources.values()), target, content, origins)
    names = class_names([*sources.values(), *([source_val] if source_val is not None else [])], label)
    sources = {n: encode_labels(ds, label, names, f"the source {n!r}") for n, ds in sources.items()}
    require_two_classes(sources, names, label)
    if source_val is not None:
        source_val = encode_labels(source_val, label, names, "the source validation set")
    if target_test is not None:
        target_test = encode_labels(target_test, label, names, "the target test set")
    if label in target.column_names:
        target = target.remove_columns(label)
    return transfer_splits(
        sources if len(sources) > 1 else next(iter(sources.values())),
        target,
        validation_fraction=args.validation_fraction,
        seed=seed,
        max_train_samples=args.max_train_samples,
        max_eval_samples=args.max_eval_samples,
        source_val=source_val,
        target_test=target_test,
    )
