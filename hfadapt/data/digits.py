"""Handwritten digits from two scanners, a real domain shift with nothing to download.

- **optdigits**: UCI "Optical Recognition of Handwritten Digits" (Alpaydin & Kaynak, 1998), as bundled in
  scikit-learn's wheel (``sklearn.datasets.load_digits``): 1,797 images, 8x8, values 0-16 (counts of set
  pixels in 4x4 blocks of a 32x32 bitmap). No official split here: a stratified 80/20 split with a fixed seed.
- **USPS**: Hull, "A database for handwritten text recognition research", IEEE TPAMI 1994; 16x16 grey images,
  7,291 train / 2,007 test, read from ``usps.npz`` (``train_images``, ``train_labels``, ``test_images``,
  ``test_labels``); a copy ships in ``hfadapt/demo_data/usps`` (its README gives source and terms).

Both are white digits on a black background (0 = background). Images are stored as ``datasets.Image`` (8-bit
greyscale, rescaled to 0-255) with a ``ClassLabel`` ``label`` of names ``"0"`` .. ``"9"``.
"""

from __future__ import annotations

import os
from pathlib import Path

import datasets
import numpy as np

DIGIT_NAMES = [str(d) for d in range(10)]
DIGITS_DOMAINS = ("optdigits", "usps")
USPS_FILE = "usps.npz"
DEMO_USPS_DIR = Path(__file__).resolve().parents[1] / "demo_data" / "usps"


def _features() -> datasets.Features:
    return datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=DIGIT_NAMES)})


def digits_dataset(images: np.ndarray, labels: np.ndarray, max_value: float) -> datasets.Dataset:
    """``(N, H, W)`` images with values in ``[0, max_value]`` and ``(N,)`` labels 0-9 as an image dataset.

    Raises:
        ValueError: on mismatched lengths, images that are not ``(N, H, W)`` or labels outside 0-9.
    """
    if images.ndim != 3 or len(images) != len(labels):
        raise ValueError(f"expected (N, H, W) images and N labels, got {images.shape} and {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"digit labels must be 0-9, got {labels.min()}..{labels.max()}")
    scaled = np.clip(np.rint(images.astype(np.float64) * (255.0 / max_value)), 0, 255).astype(np.uint8)
    return datasets.Dataset.from_dict({"image": list(scaled), "label": labels.astype(np.int64).tolist()},
                                      features=_features())


def load_optdigits(split: str = "train", seed: int = 0, test_fraction: float = 0.2) -> datasets.Dataset:
    """scikit-learn's bundled optdigits (8x8), ``split`` ``"train"`` or ``"test"`` of a stratified split.

    Raises:
        ValueError: on an unknown split.
    """
    from sklearn.datasets import load_digits

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    bunch = load_digits()
    ds = digits_dataset(bunch.images, bunch.target, max_value=16.0)
    parts = ds.train_test_split(test_size=test_fraction, seed=seed, stratify_by_column="label")
    return parts[split]


def resolve_usps_dir(data_dir: str | os.PathLike | None = None, defaults: tuple[Path, ...] = ()) -> Path:
    """The folder holding ``usps.npz``: ``data_dir``, else ``$HFADAPT_USPS_DIR``, else the first of ``defaults``
    that exists, else the copy shipped in the package.

    Raises:
        FileNotFoundError: naming the places tried and the file expected.
    """
    candidates = [Path(p) for p in (data_dir, os.environ.get("HFADAPT_USPS_DIR")) if p] + list(defaults)
    if data_dir is None:
        candidates.append(DEMO_USPS_DIR)
    for path in candidates:
        if (path / USPS_FILE).is_file():
            return path
    raise FileNotFoundError(
        f"no {USPS_FILE} in {[str(p) for p in candidates] or 'any folder'}: pass --usps_dir or set HFADAPT_USPS_DIR "
        "to a folder with usps.npz (train_images (N,16,16) uint8, train_labels, test_images, test_labels)"
    )


def load_usps(data_dir: str | os.PathLike, split: str = "train") -> datasets.Dataset:
    """USPS digits (16x16) from ``data_dir/usps.npz``, ``split`` ``"train"`` or ``"test"``.

    Raises:
        ValueError: on an unknown split or a file without the expected arrays.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    with np.load(Path(data_dir) / USPS_FILE) as data:
        missing = {f"{split}_images", f"{split}_labels"} - set(data.files)
        if missing:
            raise ValueError(f"{Path(data_dir) / USPS_FILE} lacks {sorted(missing)} (has {data.files})")
        images, labels = data[f"{split}_images"], data[f"{split}_labels"]
    return digits_dataset(images, labels, max_value=255.0 if images.dtype == np.uint8 else float(images.max()))


def load_digits_domain(name: str, split: str, usps_dir: str | os.PathLike | None = None,
                       seed: int = 0) -> datasets.Dataset:
    """One split of a digits domain by name (``"optdigits"`` or ``"usps"``).

    Raises:
        ValueError: on an unknown domain.
    """
    if name == "optdigits":
        return load_optdigits(split, seed=seed)
    if name == "usps":
        return load_usps(resolve_usps_dir(usps_dir), split)
    raise ValueError(f"unknown digits domain {name!r}; choose from {DIGITS_DOMAINS}")
