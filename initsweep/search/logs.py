"""Optuna's own log lines go to the log files, not the terminal.

Optuna prints its INFO lines (``A new study created in RDB``, ``Skipped telling trial 3 …``) to
stderr through a handler of its own. In a search they are bookkeeping: :func:`route_optuna_logs`
sends them to the files the root logger writes at that moment (inside a job, Hydra's
``<job dir>/train.log``) and lets warnings and errors reach the terminal as well. The sweeper adds
its own file, ``<sweep dir>/search.log`` (:func:`search_log`), which keeps the sweeper's lines and
Optuna's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # Hydra's job log format
SEARCH_LOG = "search.log"


class LogFilesOnly(logging.Handler):
    """Hand a record to the root logger's file handlers; a warning or worse to all its handlers.

    Looked up at each record: Hydra sets the root logger's handlers anew for every job."""

    def emit(self, record: logging.LogRecord) -> None:
        for handler in logging.getLogger().handlers:
            to_file = isinstance(handler, logging.FileHandler)
            if (to_file or record.levelno >= logging.WARNING) and record.levelno >= handler.level:
                handler.handle(record)


def route_optuna_logs() -> None:
    """Optuna's records to the log files only (warnings also to the terminal); idempotent."""
    import optuna

    optuna.logging.disable_default_handler()
    logger = logging.getLogger("optuna")
    logger.propagate = False
    if not any(isinstance(h, LogFilesOnly) for h in logger.handlers):
        logger.addHandler(LogFilesOnly())


@contextmanager
def search_log(sweep_dir: str | Path, *loggers: str) -> Iterator[Path]:
    """While a search runs: ``<sweep dir>/search.log`` keeps every INFO record of Optuna and of
    ``loggers`` (the sweeper's own), appended, so a re-run adds to it."""
    path = Path(sweep_dir) / SEARCH_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    route_optuna_logs()
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(logging.INFO)
    targets = [logging.getLogger(name) for name in ("optuna", *loggers)]
    for logger in targets:
        logger.addHandler(handler)
    try:
        yield path
    finally:
        for logger in targets:
            logger.removeHandler(handler)
        handler.close()
