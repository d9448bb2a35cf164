"""initsweep: how initialization changes training."""
