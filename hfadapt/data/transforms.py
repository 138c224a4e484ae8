"""Datasets whose model inputs are made lazily by ``Dataset.with_transform`` (images through an image processor).

A user prepares image data as the HuggingFace image-classification examples do: an ``image`` column and a
transform that runs the backbone's image processor on each batch when it is read
(``ds.with_transform(fn)``). The raw columns (``image``, ``label``) are what is stored; ``pixel_values`` only
exists in the rows the transform returns. hfadapt keeps it that way: it mixes the *raw* columns of the source
and target sets and puts the transform back on the mixed set, so nothing is materialised up front.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import datasets

Transform = Callable[[dict], dict]


def transform_of(ds: datasets.Dataset) -> Transform | None:
    """The function set by ``ds.with_transform`` / ``ds.set_transform``, or ``None`` for a plain dataset."""
    fmt = ds.format
    return fmt.get("format_kwargs", {}).get("transform") if fmt.get("type") == "custom" else None


def raw(ds: datasets.Dataset) -> datasets.Dataset:
    """``ds`` without its lazy transform (stored columns as Python objects); ``ds`` itself if it has none."""
    return ds.with_format(None) if transform_of(ds) is not None else ds


def arrow_column(ds: datasets.Dataset, column: str):
    """The ``pyarrow.ChunkedArray`` (``len(ds)`` values) of stored ``column`` over the rows of ``ds`` as it is, with a
    selection or filter applied (``ds.data`` is the whole underlying table, whatever rows a ``select``/``filter``
    kept). Raises ``KeyError`` for a column ``ds`` lacks."""
    return ds.with_format("arrow")[column]


def row_keys(ds: datasets.Dataset) -> list[str]:
    """The keys a row of ``ds`` has when read: the transform's output keys for a transformed set, else its columns."""
    if transform_of(ds) is None or len(ds) == 0:
        return list(ds.column_names)
    return list(ds[0].keys())


def _rows(values, n: int) -> list:
    """A batch value (list, tensor or array of ``n`` rows) as a list of rows."""
    rows = list(values)
    if len(rows) != n:
        raise ValueError(f"a dataset transform returned {len(rows)} rows for a batch of {n}")
    return rows


class DomainTransform:
    """The lazy transform of a mixed training set: each row goes through its own domain's transform.

    Args:
        transforms: one per domain id (``None``: the row's stored model inputs are used as they are).
        keep: model-input keys to keep from a transform's output (anything else it returns, such as the image
            itself, is dropped so the collator never sees it).
        passthrough: stored columns copied to the output untouched (``labels``, ``domain``, extra task labels).
        domain_column: the column holding the domain id.
    """

    def __init__(self, transforms: Sequence[Transform | None], keep: Iterable[str], passthrough: Iterable[str],
                 domain_column: str = "domain"):
        self.transforms = list(transforms)
        self.keep = list(keep)
        self.passthrough = list(passthrough)
        self.domain_column = domain_column

    def __call__(self, batch: dict) -> dict:
        n = len(batch[self.domain_column])
        domains = list(batch[self.domain_column])
        inputs = {k: v for k, v in batch.items() if k not in self.passthrough}
        out: dict[str, list] = {k: [None] * n for k in self.keep}
        for d in sorted(set(domains)):
            idx = [i for i in range(n) if domains[i] == d]
            part = {k: [v[i] for i in idx] for k, v in inputs.items()}
            fn = self.transforms[d]
            result = fn(part) if fn is not None else part
            for key in self.keep:
                if key in result:
                    for i, row in zip(idx, _rows(result[key], len(idx)), strict=True):
                        out[key][i] = row
        out = {k: v for k, v in out.items() if all(x is not None for x in v)}
        out.update({k: batch[k] for k in self.passthrough if k in batch})
        return out


class KeepKeys:
    """Wrap a dataset transform so that only ``keep`` keys of its output (and of the stored row) are returned."""

    def __init__(self, transform: Transform, keep: Iterable[str]):
        self.transform = transform
        self.keep = list(keep)

    def __call__(self, batch: dict) -> dict:
        out = self.transform(dict(batch))
        merged = {**{k: v for k, v in batch.items() if k in self.keep},
                  **{k: v for k, v in out.items() if k in self.keep}}
        return merged


def keep_only(ds: datasets.Dataset, keep: Iterable[str]) -> datasets.Dataset:
    """A transformed dataset whose rows carry only ``keep`` keys (model inputs and labels); plain sets unchanged."""
    fn = transform_of(ds)
    return raw(ds).with_transform(KeepKeys(fn, keep)) if fn is not None else ds
