"""Training: populations of model copies and the loop that steps them together."""
