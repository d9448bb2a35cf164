"""Where a study lives: an RDB URL (SQLite by default) or a journal file, made absolute.

A relative SQLite path or journal file is resolved against the directory the sweep starts in and
handed to every job as an absolute location, so a job that runs elsewhere (a joblib worker, a
SLURM node with another working directory) opens the same study.
"""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend

from initsweep.errors import invalid

JOURNAL_SUFFIXES = (".log", ".journal")  # a plain file path with these suffixes: journal storage


def is_journal(storage: str) -> bool:
    """A journal file is given as a path (no ``://``), as ``optuna-dashboard`` takes it."""
    return "://" not in storage and storage.endswith(JOURNAL_SUFFIXES)


def resolve_storage(storage: str | None, root: Path | None = None) -> str | None:
    """The absolute form of ``storage``; creates the folder of a SQLite file or journal file.

    ``sqlite:///outputs/optuna/x.db`` (relative to ``root``, default the working directory)
    becomes ``sqlite:////abs/outputs/optuna/x.db``; ``outputs/optuna/x.log`` becomes an absolute
    path; other URLs (``postgresql://…``, ``mysql://…``) are returned as they are. ``None`` stays
    ``None``: an in-memory study.
    """
    if storage is None:
        return None
    storage = str(storage)
    root = (root or Path.cwd()).resolve()
    if storage.startswith("sqlite:///"):
        path = Path(storage.removeprefix("sqlite:///"))
        if str(path) in ("", ":memory:"):
            raise invalid(
                "search.storage", storage, "give a file, e.g. sqlite:///outputs/optuna/x.db"
            )
        path = path if path.is_absolute() else root / path
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    if is_journal(storage):
        path = Path(storage)
        path = path if path.is_absolute() else root / path
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)
    if "://" not in storage:
        raise invalid(
            "search.storage",
            storage,
            "use an RDB URL (sqlite:///outputs/optuna/x.db, postgresql://…) "
            f"or a journal file path ending in {' or '.join(JOURNAL_SUFFIXES)}",
        )
    return storage


def open_storage(url: str | None) -> BaseStorage:
    """The Optuna storage behind a resolved location (journal files need an object, not a URL)."""
    if url is None:
        return InMemoryStorage()
    if is_journal(url):
        return JournalStorage(JournalFileBackend(url))
    return optuna.storages.get_storage(url)
