"""Data: loading real domain-shift datasets, checking them, and mixing source and target rows into batches."""

from .amazon import available_domains, load_amazon_reviews, resolve_data_dir
from .digits import load_digits_domain, load_optdigits, load_usps, resolve_usps_dir
from .images import image_transform
from .mixing import DOMAIN_COLUMN, build_training_set, check_columns, check_label_sets
from .review_format import parse_review_file
from .sampler import DomainBalancedSampler
from .splits import TransferSplits, transfer_splits

__all__ = [
    "DOMAIN_COLUMN",
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
    "resolve_data_dir",
    "transfer_splits",
]
