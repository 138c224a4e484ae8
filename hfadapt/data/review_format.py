"""Reader for the authors' ``.review`` files of the Multi-Domain Sentiment Dataset.

Blitzer, Dredze, Pereira, "Biographies, Bollywood, Boom-boxes and Blenders: Domain Adaptation for Sentiment
Classification", ACL 2007. The files are pseudo-XML: ``<review>`` blocks of ``<tag>\\nvalue\\n</tag>`` fields,
HTML entities and bare ``&``, no guaranteed single root, so an XML parser rejects them; this reads them
block by block.
"""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path

logger = logging.getLogger(__name__)

_REVIEW = re.compile(r"<review>(.*?)</review>", re.S)
_FIELD = re.compile(r"<(\w+)>\s*(.*?)\s*</\1>", re.S)


def parse_review_file(path: str | Path) -> list[dict[str, str]]:
    """Parse one ``.review`` file into a list of ``{tag: text}`` dicts (``review_text``, ``title``, ``rating``, ...).

    Invalid UTF-8 is replaced by U+FFFD with a warning that names the file, the first bad line and the number of
    reviews touched.

    Raises:
        ValueError: if the file holds no ``<review>`` block (with the path, so a wrong file is obvious).
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        # the authors' files hold a few stray latin-1 bytes: replaced, and said so, with the count and the first line
        line = data[:err.start].count(b"\n") + 1
        text = data.decode("utf-8", errors="replace")
        damaged = sum("\ufffd" in block for block in _REVIEW.findall(text))
        logger.warning("%s is not valid UTF-8 (first at line %d): the bad bytes of %d reviews were replaced by "
                       "U+FFFD; re-save the file as UTF-8 to keep them", path, line, damaged)
    reviews = [
        {tag: html.unescape(value) for tag, value in _FIELD.findall(block)} for block in _REVIEW.findall(text)
    ]
    if not reviews:
        raise ValueError(f"{path} holds no <review> block: not a Multi-Domain Sentiment .review file")
    return reviews
