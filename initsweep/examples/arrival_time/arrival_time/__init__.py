"""A researcher's own project: an arrival-time regressor, studied with initsweep."""
