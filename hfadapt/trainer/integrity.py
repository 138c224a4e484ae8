"""Files that are either whole or absent: a sha256 manifest per saved folder, and writes that replace a file at once.

Every checkpoint ``AdaptTrainer`` writes, and every model folder it saves, holds :data:`MANIFEST_NAME`: the size and
sha256 of each of its files, written after all of them. :func:`verify_manifest` re-reads the folder and names the
first file that is missing, truncated or altered. Resuming verifies the checkpoint; ``hfadapt evaluate`` is meant to
verify the model folder it scores.

:func:`atomic_write_text` and :func:`atomic_replace` write to a neighbour file first and rename it over the target
(``os.replace`` within one file system is atomic): a process killed while writing leaves the old file or none, never
half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable

MANIFEST_NAME = "sha256_manifest.json"
"""File of a checkpoint or model folder listing ``{relative path: {"size", "sha256"}}`` of its other files."""

MANIFEST_FORMAT = 1


class IntegrityError(ValueError):
    """A saved folder whose files do not match its manifest (or that has no manifest where one is required).

    The message names the file; :attr:`path` holds it."""

    def __init__(self, message: str, path: str | os.PathLike):
        super().__init__(message)
        self.path = os.fspath(path)


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """The hex sha256 of a file's bytes, read in chunks of ``chunk_size`` bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_replace(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` to write a neighbour file ``tmp`` of ``path``, fsync it, then rename it to ``path``.

    A process killed inside ``write`` leaves ``path`` as it was (and a ``.partial`` file the next call overwrites).
    """
    path = os.fspath(path)
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.partial")
    write(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` so that the file is either the old one or the whole new one."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)

    atomic_replace(path, write)


def _listed_files(folder: str) -> list[str]:
    """Relative paths of the regular files under ``folder`` (recursively), the manifest and partial files excluded."""
    found = []
    for root, _, names in os.walk(folder):
        for name in names:
            if name == MANIFEST_NAME or name.endswith(".partial"):
                continue
            found.append(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/"))
    return sorted(found)


def write_manifest(folder: str | os.PathLike, files: Iterable[str] | None = None) -> dict:
    """Write ``folder/sha256_manifest.json`` listing the size and sha256 of ``files`` (paths relative to ``folder``;
    default: every file under it). Write it last, once every listed file is complete.

    Returns:
        The manifest: ``{"format": 1, "files": {path: {"size": bytes, "sha256": hex}}}``.

    Raises:
        FileNotFoundError: if a listed file does not exist.
    """
    folder = os.fspath(folder)
    names = sorted(files) if files is not None else _listed_files(folder)
    entries = {}
    for name in names:
        path = os.path.join(folder, name)
        entries[name] = {"size": os.path.getsize(path), "sha256": file_sha256(path)}
    manifest = {"format": MANIFEST_FORMAT, "files": entries}
    atomic_write_text(os.path.join(folder, MANIFEST_NAME), json.dumps(manifest, indent=1))
    return manifest


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """The manifest of ``folder``, or ``None`` if it has none.

    Raises:
        IntegrityError: if the manifest file is not a readable manifest (truncated or edited), naming it.
    """
    path = os.path.join(os.fspath(folder), MANIFEST_NAME)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        files = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError("'files' is not a mapping")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise IntegrityError(f"{path} is not a readable manifest ({err}): the folder cannot be verified", path) from err
    return manifest


def verify_manifest(folder: str | os.PathLike, *, missing_ok: bool = False, skip: Iterable[str] = ()) -> dict | None:
    """Check every file ``folder``'s manifest lists: present, of the recorded size, with the recorded sha256.

    Files the manifest does not list (a model card or log written after the model) are not checked.

    Args:
        folder: a checkpoint or saved model folder.
        missing_ok: return ``None`` for a folder without a manifest (a model saved by plain ``transformers``)
            instead of raising.
        skip: listed files not to check (a resume of the weights only skips the optimizer state).

    Returns:
        The manifest, or ``None`` for a folder without one when ``missing_ok``.

    Raises:
        IntegrityError: naming the first file that is missing, truncated (size differs) or corrupt (sha256
            differs), or the manifest itself when it is absent (unless ``missing_ok``) or unreadable.
    """
    folder = os.fspath(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        if missing_ok:
            return None
        path = os.path.join(folder, MANIFEST_NAME)
        raise IntegrityError(
            f"{folder} has no {MANIFEST_NAME}: it was not completely written (a run killed while saving) or not "
            "by hfadapt, so its files cannot be verified", path)
    skipped = set(skip)
    for name, entry in sorted(manifest["files"].items()):
        if name in skipped:
            continue
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise IntegrityError(f"{path} is missing (listed in {MANIFEST_NAME})", path)
        size = os.path.getsize(path)
        if size != entry.get("size"):
            raise IntegrityError(
                f"{path} is truncated or was rewritten: {size} bytes, the manifest records {entry.get('size')}", path)
        if file_sha256(path) != entry.get("sha256"):
            raise IntegrityError(f"{path} is corrupt: its sha256 differs from the one in {MANIFEST_NAME}", path)
    return manifest
