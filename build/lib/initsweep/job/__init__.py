"""The job layer: a typed spec built once from the composed config, and the job run from it.

- :mod:`~initsweep.job.spec`: :func:`job_spec` reads and checks the config into a
  :class:`JobSpec` (the only ``DictConfig`` reader besides :mod:`initsweep.config` and the CLI);
- :mod:`~initsweep.job.build`: the job's parts from the spec (data, models, population,
  trackers);
- :mod:`~initsweep.job.task`: :func:`run_job` (data → models → init → population → fit →
  summary) and :func:`probe_job` (the same up to step 0).
"""

from __future__ import annotations

from omegaconf import DictConfig

from initsweep.job.spec import JobSpec, job_spec
from initsweep.job.task import probe_job, run_job


def run(cfg: DictConfig) -> float:
    """Train the job of a composed config; return its objective (``initsweep-train``)."""
    return run_job(job_spec(cfg))


def probe(cfg: DictConfig) -> float:
    """Step-0 diagnostics of the job of a composed config (``initsweep-probe``)."""
    return probe_job(job_spec(cfg))


__all__ = ["JobSpec", "job_spec", "probe", "probe_job", "run", "run_job"]
