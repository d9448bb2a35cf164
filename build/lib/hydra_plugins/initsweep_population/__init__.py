"""``hydra/launcher=population``: a sweep's jobs that share an architecture train as one
population (``initsweep.job.group``), each keeping its own directory and files."""
