"""The job layer: a typed spec built once from the composed config, and the one runner.

- :mod:`~initsweep.job.spec`: :func:`job_spec` reads and checks the config into a
  :class:`JobSpec` (the only ``DictConfig`` reader besides :mod:`initsweep.config` and the CLI);
- :mod:`~initsweep.job.build`: the job's parts from the spec (data, models, population,
  trackers);
- :mod:`~initsweep.job.runner`: :func:`run_jobs`, the one runner (data → models → init →
  population → fit → summary): a job alone is a group of one, the probe stops after step 0;
- :mod:`~initsweep.job.group`: which jobs share a population, and what keeps their files apart;
- :mod:`~initsweep.job.batch`: the population launcher's jobs between Hydra's calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from omegaconf import DictConfig

from initsweep.job import batch
from initsweep.job.runner import run_jobs
from initsweep.job.spec import JobSpec, job_spec

RUNS_JOBS = "initsweep_runs_jobs"  # the mark hydra/launcher=population looks for
F = TypeVar("F", bound=Callable)


def run(cfg: DictConfig) -> float:
    """Train the job of a composed config; return its objective (``initsweep-train``)."""
    return _job(cfg, until_init=False)


def probe(cfg: DictConfig) -> float:
    """Step-0 diagnostics of the job of a composed config (``initsweep-probe``): the runner
    stopped after step 0; the mean excess of the loss at init over its expected value."""
    return _job(cfg, until_init=True)


def _job(cfg: DictConfig, until_init: bool) -> float:
    """The job's result: from the population launcher's batch when it holds the job, else run
    here as a group of one. A job's error is raised here, for the caller to report."""
    open_batch = batch.current()
    result = open_batch.take(cfg, until_init) if open_batch else None
    if result is None:
        (result,) = run_jobs([job_spec(cfg)], until_init)
    if isinstance(result, Exception):
        raise result
    return result


def runs_jobs(task: F) -> F:
    """Mark a Hydra task function whose jobs all go through :func:`run` or :func:`probe` (and
    that does nothing else a second call would repeat), so that ``hydra/launcher=population``
    trains them together; an unmarked one runs job by job, as Hydra's basic launcher runs it."""
    setattr(task, RUNS_JOBS, True)
    return task


__all__ = ["JobSpec", "job_spec", "probe", "run", "run_jobs", "runs_jobs"]
