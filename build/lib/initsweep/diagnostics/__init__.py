"""Step-0 diagnostics: loss at init against theory, and per-layer statistics."""

from initsweep.diagnostics.layers import effective_rank, layer_report, mean_cosine
from initsweep.diagnostics.loss_at_init import expected_loss, step0_report
from initsweep.diagnostics.table import format_layers

__all__ = [
    "effective_rank",
    "expected_loss",
    "format_layers",
    "layer_report",
    "mean_cosine",
    "step0_report",
]
