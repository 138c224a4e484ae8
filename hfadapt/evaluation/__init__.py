"""What a practitioner reads after a run: proxy A-distance, negative-transfer checks, plots and the run report."""

from .negative_transfer import negative_transfer_warnings
from .pad import proxy_a_distance

__all__ = ["negative_transfer_warnings", "proxy_a_distance"]
