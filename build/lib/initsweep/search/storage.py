"""Where a study lives: an RDB URL (SQLite by default) or a journal file, made absolute.

A relative SQLite path or journal file is resolved once, when the search starts, against the
directory it was started in (Hydra's ``hydra.runtime.cwd``) and handed to every job as an absolute
location, so a job that runs elsewhere (a joblib worker, a SLURM node with another working
directory) opens the same study. The sweep dir's ``optuna_study.yaml`` records that location
from the start (:func:`locate_study`): a re-run into the same sweep dir from another directory
continues the same study.

SQLite waits up to :data:`SQLITE_TIMEOUT_S` for a lock another process holds (Python's default is
5 s, which a busy study exceeds); ``sqlite:///x.db?timeout=300`` sets another wait.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
import yaml
from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend

from initsweep.errors import invalid

log = logging.getLogger(__name__)

JOURNAL_SUFFIXES = (".log", ".journal")  # a plain file path with these suffixes: journal storage
SQLITE = "sqlite:///"
SQLITE_TIMEOUT_S = 60.0  # seconds a SQLite connection waits for another writer's lock


@dataclass(frozen=True)
class Heartbeat:
    """Optuna's heartbeat for an RDB study: a trial whose heartbeat is older than ``grace_s`` is
    stale (its sweeper died); it is failed and re-queued up to ``max_retry`` times."""

    interval_s: int
    grace_s: int
    max_retry: int


def is_journal(storage: str) -> bool:
    """A journal file is given as a path (no ``://``), as ``optuna-dashboard`` takes it."""
    return "://" not in storage and storage.endswith(JOURNAL_SUFFIXES)


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (without its ``?query``), else ``None``."""
    if not url.startswith(SQLITE):
        return None
    return Path(url.removeprefix(SQLITE).partition("?")[0])


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
    path = sqlite_file(storage)
    if path is not None:
        if str(path) in ("", ":memory:"):
            raise invalid(
                "search.storage", storage, "give a file, e.g. sqlite:///outputs/optuna/x.db"
            )
        query = storage.partition("?")[2]
        path = path if path.is_absolute() else root / path
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"{SQLITE}{path}" + (f"?{query}" if query else "")
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


def open_storage(url: str | None, heartbeat: Heartbeat | None = None) -> BaseStorage:
    """The Optuna storage behind a resolved location (journal files need an object, not a URL).

    SQLite waits :data:`SQLITE_TIMEOUT_S` for a lock unless the URL sets ``timeout``. With
    ``heartbeat`` an RDB storage records heartbeats and re-queues stale trials (a journal file
    has no heartbeat in Optuna).
    """
    if url is None:
        return InMemoryStorage()
    if is_journal(url):
        return JournalStorage(JournalFileBackend(url))
    engine_kwargs = {}
    if url.startswith(SQLITE) and "timeout=" not in url.partition("?")[2]:
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    beat = {}
    if heartbeat is not None:
        with warnings.catch_warnings():  # both are marked experimental since Optuna 2.8/2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            beat = {
                "heartbeat_interval": heartbeat.interval_s,
                "grace_period": heartbeat.grace_s,
                "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=heartbeat.max_retry
                ),
            }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        rdb = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **beat)
    return optuna.storages.get_storage(rdb)


def locate_study(
    given: str | None, study_name: str | None, cwd: Path, record: Path
) -> tuple[str | None, str]:
    """``(absolute storage, how it was found)`` for a search starting in ``cwd``.

    ``record`` is the sweep dir's ``optuna_study.yaml``: when it holds the same study, given the
    same way (``given``, before resolution), its absolute location wins, so re-running the same
    command into the same sweep dir from another directory continues that study. Otherwise
    ``given`` is resolved against ``cwd``; a same-named SQLite file or journal in a parent
    directory of ``cwd`` is pointed out (a study started from there), not silently replaced.
    """
    previous = _read_record(record)
    if (
        previous.get("study_name") == study_name
        and previous.get("storage_given") == given
        and previous.get("storage")
    ):
        return previous["storage"], (
            f"recorded in {record} (relative to {previous.get('started_in')}, where this sweep "
            "dir's search started)"
        )
    url = resolve_storage(given, root=cwd)
    if url is None or given is None:
        return url, "in memory"
    how = f"relative to {cwd}" if url != given else "as given"
    existing = sqlite_file(url) or (Path(url) if is_journal(url) else None)
    if existing is not None and not existing.exists() and how != "as given":
        relative = existing.relative_to(cwd)
        started = [p for p in cwd.parents if (p / relative).exists()]
        if started:
            there = started[0] / relative
            log.warning(
                f"A new study file {existing}; one of this name exists in {there} (a search "
                f"started from {started[0]}): to continue that study, run from there or give "
                f"search.storage={_same_kind(url, there)}"
            )
    return url, how


def _same_kind(url: str, path: Path) -> str:
    return f"{SQLITE}{path}" if url.startswith(SQLITE) else str(path)


def _read_record(path: Path) -> dict:
    try:
        found = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return found if isinstance(found, dict) else {}
