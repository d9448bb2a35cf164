"""The files a job writes, and the three ways initsweep touches them (no torch, no Hydra).

A job directory is the contract between the writers (the job, its trackers, the checkpoint, the
search) and the readers (``initsweep-report``, a re-run that resumes): the names below are that
contract. Every file a reader may see half-written is written atomically: a temporary file in
the same directory, flushed and fsynced, then renamed over the target, so a killed writer leaves
the old file or the new one, never a torn one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

METRICS = "metrics.jsonl"  # one JSON object per logged point, appended and flushed
INIT = "init.json"  # step-0 diagnostics per seed
HISTOGRAMS = "histograms.jsonl"  # per-layer histograms per seed, step and tensor
SUMMARY = "summary.json"  # written last: its presence means the job finished
STATUS = "status.json"  # how a job ended that did not finish (failed, interrupted)
CHECKPOINT = "checkpoint.pt"  # the last epoch, for resume
# an Optuna search's files in its sweep dir (``initsweep.search.results`` writes them)
STUDY_OUTPUTS = {
    "results": "optimization_results.yaml",  # the sweeper's own: best params and value
    "study": "optuna_study.yaml",
    "trials": "optuna_trials.csv",
    "history": "optuna_history.png",
    "slice": "optuna_slice.png",
    "importance": "optuna_importance.png",
}


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
    """``obj`` as indented JSON at ``path``, atomically."""
    with atomic_open(path) as f:
        json.dump(obj, f, indent=2, default=str)


def read_jsonl(path: str | Path) -> list[dict]:
    """Records of a JSONL file; a torn last line (a killed writer) is skipped."""
    records = []
    with open(path) as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
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
