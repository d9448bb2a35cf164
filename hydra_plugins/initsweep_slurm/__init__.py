"""``hydra/launcher=slurm``: Hydra's submitit SLURM launcher plus a word when a job can never
start (:mod:`.launcher`)."""
