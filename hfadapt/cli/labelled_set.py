"""A labelled set named on the command line, and a saved classifier's scores on it: what ``hfadapt evaluate`` scores
and what ``hfadapt fuse --mode greedy_soup`` chooses its ingredients by."""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PretrainedConfig, PreTrainedModel

from ..data.digits import DIGITS_DOMAINS


def add_labelled_set_arguments(parser: argparse.ArgumentParser, file_flag: str, default_split: str,
                               what: str) -> None:
    """Add the flags that name a labelled set and how to read it: ``--dataset_name`` (with ``--split``, default
    ``default_split``), ``file_flag`` (a file), ``--domain_column_name`` + ``--domain``, the column names,
    ``--max_samples``, ``--max_length``, ``--batch_size`` and ``--cpu``. ``what`` names the set in the help."""
    parser.set_defaults(default_split=default_split)
    parser.add_argument("--dataset_name", default=None, help=f"Hub id or local folder of {what}")
    parser.add_argument("--dataset_config_name", default=None, help="configuration of --dataset_name")
    parser.add_argument("--split", default=None, help=f"split of --dataset_name (default {default_split}; train for "
                        "the demo data)")
    parser.add_argument(file_flag, dest="labelled_file", default=None, metavar="FILE",
                        help=f"{what}: labelled file(s), csv, tsv, json, jsonl or parquet")
    parser.add_argument("--domain_column_name", default=None, help="column of the domains, with --domain")
    parser.add_argument("--domain", default=None, help="the domain to score (with --domain_column_name); alone, a "
                        "domain of the shipped demo data: books, dvd, electronics, or the digits domains usps, "
                        "optdigits")
    parser.add_argument("--text_column_name", default="text",
                        help="text column, or two joined by ',' (sentence pairs)")
    parser.add_argument("--label_column_name", default="label", help="column of the labels (names or ids)")
    parser.add_argument("--image_column_name", default=None, help="image column of an image set (default image)")
    parser.add_argument("--usps_dir", default=None, help="folder of usps.npz (default: the shipped copy)")
    parser.add_argument("--max_samples", type=int, default=None, help="score a seeded random sample of this many rows")
    parser.add_argument("--max_length", type=int, default=128, help="tokens read per text")
    parser.add_argument("--batch_size", type=int, default=64, help="rows per evaluation batch")
    parser.add_argument("--cpu", action="store_true", help="evaluate on the CPU even if a GPU is present")


def names_a_labelled_set(args: argparse.Namespace) -> bool:
    """True if ``args`` (of :func:`add_labelled_set_arguments`) name a labelled set."""
    return bool(args.dataset_name or args.labelled_file or args.domain)


def labelled_rows(args: argparse.Namespace, config: PretrainedConfig):
    """The labelled rows ``args`` name, their labels as ``config``'s ids (matched to ``id2label`` by name; integer
    ids also work), and the set's name.

    Raises:
        ValueError: no set named, a missing column (listing those there are), rows without labels, or labels the
            model does not know.
    """
    from ..data.loading import LABEL, encode_labels, has_labels, load_table, require_columns, select_domain

    if args.dataset_name or args.labelled_file:
        rows = load_table(args.dataset_name, args.dataset_config_name, args.split or args.default_split,
                          args.labelled_file)
        name = args.domain or args.default_split
    elif args.domain in DIGITS_DOMAINS:
        from ..data import load_digits_domain

        return load_digits_domain(args.domain, "test", usps_dir=args.usps_dir), args.domain
    elif args.domain:  # a domain of the shipped reviews
        rows, name = load_table("demo:amazon-msd", split=args.split or "train"), args.domain
        args.domain_column_name = args.domain_column_name or "domain"
    else:
        raise ValueError("no labelled set: give --dataset_name or a file (or --domain, a domain of the shipped demo "
                         "data: books, dvd, electronics, usps, optdigits)")
    if args.domain_column_name and args.domain:
        rows = select_domain(rows, args.domain_column_name, args.domain, f"the labelled set ({args.domain})")
    label = args.label_column_name
    require_columns(rows, [label], "the labelled set", "--label_column_name")
    if not has_labels(rows, label):
        raise ValueError(f"the labelled set's {label!r} column holds no label: scoring needs labelled rows")
    names = [config.id2label[i] for i in range(config.num_labels)]
    try:
        rows = encode_labels(rows, label, names, "the labelled set")
    except ValueError:
        values = {v for v in rows.unique(label) if v is not None}
        if not all(isinstance(v, int) and 0 <= v < len(names) for v in values):
            raise
        rows = rows.rename_column(label, LABEL) if label != LABEL else rows  # label ids already
    return rows, name


@dataclass
class LabelledSet:
    """A labelled set ready for a model: ``rows`` tokenised (text) or with the image transform set (images), the
    ``processor`` that did it, the set's ``name`` (the metrics' prefix) and whether it ``is_image``."""

    rows: object
    processor: object
    name: str
    is_image: bool


def prepared_labelled_set(args: argparse.Namespace, model_dir: str | Path) -> LabelledSet:
    """The labelled set ``args`` name (:func:`labelled_rows`), sampled to ``--max_samples`` and prepared with the
    tokenizer or image processor saved in ``model_dir``, its labels as that folder's model's ids.

    Raises:
        ValueError: as :func:`labelled_rows`, a missing text or image column, or a ``--max_length`` above the
            model's positions.
    """
    from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer

    from ..data import image_transform
    from ..data.loading import require_columns
    from ..data.sampler import row_sample
    from ..data.text import check_max_length, tokenizer_function

    config = AutoConfig.from_pretrained(model_dir)
    is_image = any("ImageClassification" in a for a in config.architectures or [])
    rows, name = labelled_rows(args, config)
    if args.max_samples:
        rows = row_sample(rows, args.max_samples)
    if is_image:
        processor = AutoImageProcessor.from_pretrained(model_dir)
        column = args.image_column_name or "image"
        require_columns(rows, [column], "the labelled set", "--image_column_name")
        rows = rows.with_transform(image_transform(processor, config, image_column=column))
    else:
        processor = AutoTokenizer.from_pretrained(model_dir)
        check_max_length(args.max_length, processor, config)
        columns = [c.strip() for c in args.text_column_name.split(",")]
        require_columns(rows, columns, "the labelled set", "--text_column_name")
        rows = rows.map(tokenizer_function(processor, columns, args.max_length), batched=True)
    return LabelledSet(rows, processor, name, is_image)


def classification_scores(model: PreTrainedModel, labelled: LabelledSet, args: argparse.Namespace) -> dict[str, float]:
    """Accuracy, macro-F1 and per-class recall (in [0, 1]) of ``model`` on ``labelled``, each key prefixed with the
    set's name (``<name>_accuracy``), by ``transformers.Trainer.evaluate`` (``--batch_size``, ``--cpu``). The model
    is back on its own device afterwards."""
    from transformers import Trainer, TrainingArguments

    from ..evaluation.metrics import classification_metrics

    device = next(model.parameters()).device
    try:
        with tempfile.TemporaryDirectory() as tmp:
            arguments = TrainingArguments(tmp, per_device_eval_batch_size=args.batch_size, report_to="none",
                                          use_cpu=args.cpu, remove_unused_columns=not labelled.is_image,
                                          dataloader_pin_memory=torch.cuda.is_available() and not args.cpu)
            trainer = Trainer(model, arguments, processing_class=labelled.processor,
                              compute_metrics=classification_metrics)
            metrics = trainer.evaluate(labelled.rows, metric_key_prefix=labelled.name)
    finally:
        model.to(device)  # a greedy soup averages models that must stay on one device
    return {k: v for k, v in metrics.items() if not k.endswith(("_runtime", "_per_second"))}
