"""Data: loading real domain-shift datasets, checking them, and mixing source and target rows into batches."""

from .amazon import available_domains, load_amazon_reviews, load_review_folder
from .digits import load_digits_domain, load_optdigits, load_usps, resolve_usps_dir
from .images import image_transform
from .loading import (  # noqa: I001
    DEMO_DATASETS,
    DataArguments,
    class_names,
    encode_labels,
    load_files,
    load_table,
    load_transfer_splits,
)
from .mixing import DOMAIN_COLUMN, build_training_set, check_columns, check_label_sets
from .review_format import parse_review_file
from .sampler import DomainBalancedSampler
from .splits import TransferSplits, transfer_splits
from .text import tokenize_splits, tokenizer_function

__all__ = [
    "DEMO_DATASETS",
    "DOMAIN_COLUMN",
    "DataArguments",
    "DomainBalancedSampler",
    "TransferSplits",
    "available_domains",
    "build_training_set",
    "image_transform",
    "load_digits_domain",
    "load_optdigits",
    "load_usps",
    "resolve_usps_dir",
    "check_columns",
    "check_label_sets",
    "load_amazon_reviews",
    "parse_review_file",
    "class_names",
    "encode_labels",
    "load_files",
    "load_review_folder",
    "load_table",
    "load_transfer_splits",
    "tokenize_splits",
    "tokenizer_function",
    "transfer_splits",
]
