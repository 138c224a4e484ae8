"""Reader for the authors' ``.review`` files of the Multi-Domain Sentiment Dataset.

Blitzer, Dredze, Pereira, "Biographies, Bollywood, Boom-boxes and Blenders: Domain Adaptation for Sentiment
Classification", ACL 2007. The files are pseudo-XML: ``<review>`` blocks of ``<tag>\\nvalue\\n</tag>`` fields,
HTML entities and bare ``&``, no guaranteed single root, so an XML parser rejects them; this reads them
block by block.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

_REVIEW = re.compile(r"<review>(.*?)</review>", re.S)
_FIELD = re.compile(r"<(\w+)>\s*(.*?)\s*</\1>", re.S)


def parse_review_file(path: str | Path) -> list[dict[str, str]]:
    """Parse one ``.review`` file into a list of ``{tag: text}`` dicts (``review_text``, ``title``, ``rating``, ...).

    Raises:
        ValueError: if the file holds no ``<review>`` block (with the path, so a wrong file is obvious).
    """
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    reviews = [
        {tag: html.unescape(value) for tag, value in _FIELD.findall(block)} for block in _REVIEW.findall(text)
    ]
    if not reviews:
        raise ValueError(f"{path} holds no <review> block: not a Multi-Domain Sentiment .review file")
    return reviews
