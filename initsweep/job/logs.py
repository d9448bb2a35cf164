"""Whose log lines they are, and lines kept until a job's log file is open.

Hydra opens a job's log file (``train.log``) when it runs the job (``run_job``). The population
launcher trains a group of jobs before that (``hydra_plugins/initsweep_population/launcher.py``):
meanwhile :class:`KeptRecords` keeps each job's records (those the runner logs inside
:func:`job_logs` for that job; the group's shared ones, its data and population, for every job
of it), and :func:`to_log_files` writes them into the job's file once Hydra has opened it.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

JOB: ContextVar[Path | None] = ContextVar("initsweep_job", default=None)  # whose lines, now


@contextmanager
def job_logs(output_dir: str | Path) -> Iterator[None]:
    """What is logged in this block belongs to the job writing ``output_dir``."""
    token = JOB.set(Path(output_dir))
    try:
        yield
    finally:
        JOB.reset(token)


class KeptRecords(logging.Handler):
    """A root handler that keeps every record for the jobs ``keys`` (their output dirs): a
    record logged inside :func:`job_logs` of one of them is that job's, any other is each job's.
    Records are kept formatted (:func:`plain`), so a SLURM task can send them back."""

    def __init__(self, keys: Iterable[Hashable]) -> None:
        super().__init__()
        self.records: dict[Hashable, list[logging.LogRecord]] = {k: [] for k in keys}

    def emit(self, record: logging.LogRecord) -> None:
        job, kept = JOB.get(), plain(record)
        for key in [job] if job in self.records else self.records:
            self.records[key].append(kept)

    @contextmanager
    def attached(self) -> Iterator[KeptRecords]:
        root = logging.getLogger()
        root.addHandler(self)
        try:
            yield self
        finally:
            root.removeHandler(self)


def plain(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of ``record`` with its message and traceback already formatted."""
    kept = logging.makeLogRecord(record.__dict__)
    kept.msg, kept.args = record.getMessage(), None
    if record.exc_info:
        kept.exc_text = record.exc_text or logging.Formatter().formatException(record.exc_info)
        kept.exc_info = None
    return kept


def to_log_files(records: list[logging.LogRecord]) -> None:
    """Hand ``records`` to the root logger's file handlers only: the job's log files, as Hydra's
    ``run_job`` writes a failed job's error there. Their console lines showed as they came."""
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    for record in records:
        for handler in files:
            if record.levelno >= handler.level:
                handler.handle(record)
