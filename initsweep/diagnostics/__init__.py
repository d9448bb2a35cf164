"""Step-0 diagnostics: loss at init against theory, and per-layer statistics."""

from initsweep.diagnostics.loss_at_init import expected_loss, step0_report

__all__ = ["expected_loss", "step0_report"]
