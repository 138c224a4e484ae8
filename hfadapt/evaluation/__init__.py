"""What a practitioner reads after a run: proxy A-distance, negative-transfer and baseline-convergence checks, plots
and the run report."""

from .convergence import baseline_convergence_warnings
from .negative_transfer import negative_transfer_warnings
from .pad import proxy_a_distance

__all__ = ["baseline_convergence_warnings", "negative_transfer_warnings", "proxy_a_distance"]
