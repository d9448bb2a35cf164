"""The files a job writes, and how initsweep touches them (no torch, no Hydra).

A job directory is the contract between the writers (the job, its trackers, the checkpoint, the
search) and the readers (``initsweep-report``, a re-run that resumes): the names below are that
contract. Every file a reader may see half-written is written atomically: a temporary file in
the same directory, flushed and fsynced, then renamed over the target, so a killed writer leaves
the old file or the new one, never a torn one.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import filelock

from initsweep.errors import ConfigError

METRICS = "metrics.jsonl"  # one JSON object per logged point, appended and flushed
INIT = "init.json"  # step-0 diagnostics per seed
HISTOGRAMS = "histograms.jsonl"  # per-layer histograms per seed, step and tensor
SUMMARY = "summary.json"  # written last: its presence means the job finished
STATUS = "status.json"  # how a job ended that did not finish (failed, interrupted)
CHECKPOINT = "checkpoint.pt"  # the last epoch, for resume
LOCK = ".lock"  # an OS lock on it is held while a job (or a sweep) writes the dir
# an Optuna search's files in its sweep dir (``initsweep.search.results`` writes them)
STUDY_OUTPUTS = {
    "results": "optimization_results.yaml",  # the sweeper's own: best params and value
    "study": "optuna_study.yaml",
    "trials": "optuna_trials.csv",
    "history": "optuna_history.png",
    "slice": "optuna_slice.png",
    "importance": "optuna_importance.png",
}

log = logging.getLogger("initsweep")


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; on success rename it over ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """``obj`` as indented JSON at ``path``, atomically. JSON has no NaN or infinity (``jq`` and
    JavaScript refuse Python's ``NaN``): a number that is not finite is written ``null``."""
    with atomic_open(path) as f:
        json.dump(finite(obj), f, indent=2, default=str, allow_nan=False)


def finite(obj: Any) -> Any:
    """``obj`` with every float that is not finite replaced by ``None``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def read_jsonl(path: str | Path) -> list[dict]:
    """Records of a JSONL file; a torn last line (a killed writer) and a line that is not a
    JSON object (another program's) are skipped."""
    records = []
    with open(path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def unwritable(path: str | Path) -> str | None:
    """Why ``path`` cannot hold a job's files (``None`` when it can); creates nothing.

    The nearest folder that exists must be a folder we can create a file in.
    """
    existing = Path(path).absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file"
    probe = existing / ".initsweep-write-test"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        return e.strerror or type(e).__name__
    return None


class DirBusy(ConfigError):
    """Another process is writing the directory (it holds its lock)."""


def lock_dir(path: str | Path, key: str = "paths.output_dir") -> filelock.BaseFileLock | None:
    """Take ``path``'s OS file lock for writing there; a second writer raises :class:`DirBusy`.

    The lock (``fcntl.flock`` on ``path/.lock``) dies with its process, also by ``kill -9``, so
    a crashed job never blocks its re-run. It is re-entrant within a process (the CLI takes it
    before Hydra writes ``.hydra/``, the job again). Where the file system cannot lock, the job
    runs unlocked (``None``), with a warning.
    """
    lock = filelock.FileLock(
        Path(path) / LOCK, timeout=0, is_singleton=True, thread_local=False, fallback_to_soft=False
    )
    try:
        lock.acquire()
    except filelock.Timeout:
        raise DirBusy(
            f"{key}={str(path)!r} is being written by another initsweep process; wait until it "
            "ends, or choose another hydra.run.dir / hydra.sweep.dir"
        ) from None
    except OSError as e:
        log.warning("cannot lock %s (%s): a second writer would not be detected", path, e)
        return None
    return lock


@contextmanager
def dir_lock(path: str | Path, key: str = "paths.output_dir") -> Iterator[None]:
    """:func:`lock_dir` for the duration of a ``with`` block."""
    lock = lock_dir(path, key)
    try:
        yield
    finally:
        if lock is not None:
            lock.release()
