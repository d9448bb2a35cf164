"""The population launcher's jobs, between Hydra's two calls of their task function.

The launcher (``hydra_plugins/initsweep_population/launcher.py``) keeps Hydra's launcher
contract: every job goes through Hydra's own ``run_job`` with the app's task function, while a
group still trains as one population. initsweep's task functions (marked with
:func:`initsweep.job.runs_jobs`) reach :func:`initsweep.job.run` or :func:`~initsweep.job.probe`,
which hand the job to the open :class:`Batch`, if there is one:

1. **collect** (:func:`collecting`): the launcher calls each task function once, with no
   callbacks and no job logging; the job's spec is read (or the error reading it kept) and the
   call returns at once;
2. **train**: the launcher runs each group of :meth:`Batch.groups` (:func:`run_kept`, here or as a
   SLURM task); each job's result and log records are kept (:meth:`Batch.done`);
3. **complete**: the launcher calls each task function again through ``run_job``, with the real
   callbacks and the job's own logging; the job's records go to its log files and its result is
   returned, or its error raised, so a failed job is reported as under any launcher.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from omegaconf import DictConfig

from initsweep.job.group import group_jobs
from initsweep.job.logs import KeptRecords, to_log_files
from initsweep.job.runner import Result, run_jobs
from initsweep.job.spec import JobSpec, job_spec


@dataclass
class Entry:
    """One job of the batch: its spec (once read), its result (once known), its records."""

    until_init: bool
    spec: JobSpec | None = None
    result: Result | None = None
    records: list[logging.LogRecord] = field(default_factory=list)


class Batch:
    """The jobs of one ``launch``, by Hydra job number (``hydra.job.num``)."""

    def __init__(self) -> None:
        self.jobs: dict[int, Entry] = {}
        self.completing = False

    def take(self, cfg: DictConfig, until_init: bool) -> Result | None:
        """The runner's answer for the job Hydra runs now: collecting, NaN once its spec is kept;
        completing, its kept result; ``None`` for a job this batch does not hold."""
        from hydra.core.hydra_config import HydraConfig

        num = HydraConfig.get().job.num
        if not self.completing:
            self.jobs[num] = entry = Entry(until_init)
            with KeptRecords([num]).attached() as kept:
                try:
                    entry.spec = job_spec(cfg)
                except Exception as e:  # raised when the job completes, where it is reported
                    entry.result = e
            entry.records += kept.records[num]
            return math.nan
        entry = self.jobs.get(num)
        if entry is None or entry.result is None:
            return None
        to_log_files(entry.records)
        return entry.result

    def groups(self, max_copies: int | None = None) -> list[list[int]]:
        """The jobs to run, as groups of job numbers (:func:`~initsweep.job.group.group_jobs`;
        the probe's jobs apart from the training ones)."""
        out = []
        for until_init in (False, True):
            nums = [
                n
                for n, e in self.jobs.items()
                if e.spec is not None and e.result is None and e.until_init == until_init
            ]
            specs = [self.jobs[n].spec for n in nums]
            out += [[nums[i] for i in g] for g in group_jobs(specs, max_copies)]
        return out

    def specs(self, group: list[int]) -> list[JobSpec]:
        return [self.jobs[n].spec for n in group]

    def until_init(self, group: list[int]) -> bool:
        return self.jobs[group[0]].until_init

    def done(self, group: list[int], results: list, records: list[list]) -> None:
        for num, result, kept in zip(group, results, records):
            self.jobs[num].result = result
            self.jobs[num].records += kept


_open: list[Batch] = []  # the batch of the launch under way (Hydra runs one at a time)


@contextmanager
def collecting() -> Iterator[Batch]:
    """Open a batch for one ``launch``: the runner collects into it, then completes from it."""
    batch = Batch()
    _open.append(batch)
    try:
        yield batch
    finally:
        _open.remove(batch)


def current() -> Batch | None:
    return _open[-1] if _open else None


def run_kept(specs: list[JobSpec], until_init: bool) -> tuple[list[Result], list[list]]:
    """:func:`~initsweep.job.runner.run_jobs` of one group, and each job's log records."""
    with KeptRecords([s.output_dir for s in specs]).attached() as kept:
        results = run_jobs(specs, until_init)
    return results, [kept.records[s.output_dir] for s in specs]
