"""Find and read the jobs of a sweep (or one run) from their files alone, never from W&B.

A job directory holds any of ``summary.json``, ``metrics.jsonl``, ``init.json`` or ``.hydra/``.
A job without a readable ``summary.json`` is still reported, with a status saying why: it may be
running, it may have failed or been killed, its summary may be corrupt.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml
from tqdm.auto import tqdm

from initsweep.files import HISTOGRAMS, INIT, METRICS, STATUS, SUMMARY, read_jsonl
from initsweep.overrides import parse_overrides
from initsweep.overrides import varying_keys as _varying
from initsweep.schema import SearchConfig, keys_where
from initsweep.summary import from_json

JOB_FILES = (SUMMARY, METRICS, INIT, ".hydra")
# overrides the Optuna sweeper gives each trial to find its study: they vary, they are not factors
# (derived from the search schema's field meanings, initsweep/schema.py)
BOOKKEEPING = keys_where(SearchConfig, "bookkeeping", prefix="search.")
SKIP_DIRS = {"wandb", "tensorboard", ".hydra", "report", "__pycache__"}

# job status: finished | incomplete (no summary yet: running, failed or killed) | corrupt | empty
# (| diverged: every seed diverged and the job stopped there; its summary is whole)
FINISHED, INCOMPLETE, CORRUPT, EMPTY = "finished", "incomplete", "corrupt", "empty"
DIVERGED = "diverged"


def _natural_key(path: Path) -> list:
    """Sort job dirs 0, 1, 2, ..., 10 rather than 0, 1, 10, 2."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def is_job_dir(path: Path) -> bool:
    return any((path / f).exists() for f in JOB_FILES)


def find_job_dirs(root: Path) -> list[Path]:
    """``root`` itself if it is a job, else every job dir below it (sweeps nest one level, Optuna
    and hand-made studies may nest deeper)."""
    if is_job_dir(root):
        return [root]
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        if here != root and is_job_dir(here):
            found.append(here)
            dirnames.clear()  # a job's own subdirs (wandb/, .hydra/) are not jobs
            continue
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
    return sorted(found, key=_natural_key)


def _read_json(path: Path) -> tuple[dict | None, str]:
    """(object, "") or (None, why it could not be read)."""
    if not path.exists():
        return None, f"no {path.name}"
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return None, f"{path.name} unreadable ({type(e).__name__}: {str(e)[:80]})"
    if not isinstance(obj, dict):
        return None, f"{path.name} is not a JSON object"
    return obj, ""


def _read_overrides(path: Path) -> dict[str, str] | None:
    """``.hydra/overrides.yaml`` (a list of ``key=value``) as a dict; None when unknown."""
    try:
        items = yaml.safe_load(path.read_text()) or []
    except (OSError, yaml.YAMLError):
        return None
    return parse_overrides(items)


@dataclass
class Job:
    """What a job's files say. ``status`` is one of finished, incomplete, corrupt, empty."""

    path: Path
    name: str
    status: str
    detail: str
    overrides: dict[str, str]
    config: dict
    summary: dict | None
    metrics: list[dict]
    init: dict | None
    label: str = ""  # set by the study: the overrides that vary across jobs
    overrides_known: bool = True  # False: no .hydra/overrides.yaml (not a Hydra job dir)

    @classmethod
    def of(
        cls,
        overrides: list[str] | dict[str, str],
        summary: dict | None,
        metrics: list[dict],
        name: str = "",
    ) -> Job:
        """A job held in memory (no files): its overrides, ``summary.json`` and records."""
        status = (summary or {}).get("status", FINISHED) if summary is not None else INCOMPLETE
        config = (summary or {}).get("config") or {}
        return cls(
            Path(name), name, status, "", parse_overrides(overrides), config, summary,
            list(metrics), None,
        )  # fmt: skip

    @property
    def finished(self) -> bool:
        return self.status in (FINISHED, DIVERGED)

    @property
    def seeds(self) -> list[int]:
        if self.summary:
            return [s["seed"] for s in self.summary.get("seeds", [])]
        if self.init:
            return [s["seed"] for s in self.init.get("seeds", [])]
        return sorted({r["seed"] for r in self.metrics if "seed" in r})

    @property
    def tags(self) -> list[str]:
        """The job's ``tags`` (summary.json's, else its config's)."""
        return list((self.summary or {}).get("tags") or self.config.get("tags") or [])

    @cached_property
    def histograms(self) -> list[dict]:
        """Every record of ``histograms.jsonl`` (per seed, logged epoch and tensor)."""
        path = self.path / HISTOGRAMS
        return read_jsonl(path) if path.exists() else []

    @property
    def init_histograms(self) -> list[dict]:
        """The step-0 records of ``histograms.jsonl`` (weights, biases, activations at init)."""
        return [r for r in self.histograms if r.get("epoch") == 0 and r.get("step") == 0]


def load_job(path: Path, root: Path) -> Job:
    """Read one job dir; never raises on missing, partial or corrupt files."""
    name = str(path.relative_to(root)) if path != root else path.name
    summary, why = _read_json(path / SUMMARY)
    summary = from_json(summary) if summary is not None else None
    init, _ = _read_json(path / INIT)
    metrics = read_jsonl(path / METRICS) if (path / METRICS).exists() else []
    overrides = _read_overrides(path / ".hydra" / "overrides.yaml")
    config = (summary or {}).get("config") or {}
    if not config and (path / ".hydra" / "config.yaml").exists():
        try:
            config = yaml.safe_load((path / ".hydra" / "config.yaml").read_text()) or {}
        except (OSError, yaml.YAMLError):
            config = {}

    ended, _ = _read_json(path / STATUS)  # written by a job that failed or was stopped
    how = f"job {ended.get('status')}" if ended else "running, or killed"
    if ended and ended.get("error"):
        how += f" ({ended['error']})"
    if summary is not None:
        status, detail = summary.get("status", FINISHED), ""
    elif (path / SUMMARY).exists():
        status, detail = CORRUPT, why
    elif metrics:
        last = metrics[-1]
        status = INCOMPLETE
        detail = (
            f"no summary.json: {how}; last logged step {last.get('step')} "
            f"(epoch {last.get('epoch')})"
        )
    else:
        status = EMPTY
        detail = (
            f"no metrics: {how}" if ended else "no metrics: not started, or failed before training"
        )
    return Job(
        path, name, status, detail, overrides or {}, config, summary, metrics, init,
        overrides_known=overrides is not None,
    )  # fmt: skip


def varying_keys(jobs: list[Job]) -> list[str]:
    """The override keys whose value differs between jobs (in first-seen order), the searched
    keys of an Optuna search but not its :data:`BOOKKEEPING`; jobs whose overrides are unknown
    (no ``.hydra/overrides.yaml``) do not count."""
    keys = _varying([job.overrides for job in jobs if job.overrides_known])
    return [k for k in keys if k not in BOOKKEEPING]


def short(value: str) -> str:
    """An override value to read: a sampled float (``1.6053958873434``) to 4 significant digits;
    anything typed by hand (``1.4142``, ``zeros``) as it is."""
    try:
        return f"{float(value):.4g}" if len(value) > 8 else value
    except ValueError:
        return value


def is_search(jobs: list[Job]) -> bool:
    """Whether the jobs are trials of an Optuna search (the sweeper's overrides or summary)."""
    return any("search.trial" in j.overrides or (j.summary or {}).get("search") for j in jobs)


@dataclass
class Study:
    """All jobs found under ``root``, labelled by the overrides that vary between them."""

    root: Path
    jobs: list[Job]
    varying: list[str]

    @property
    def finished(self) -> list[Job]:
        return [j for j in self.jobs if j.finished]

    @property
    def tags(self) -> list[str]:
        """Every job's tags, in first-seen order."""
        return list(dict.fromkeys(t for j in self.jobs for t in j.tags))

    @property
    def objective(self) -> str:
        """The objective metric of the study (the first finished job's), ``val/loss`` if none."""
        for job in self.finished:
            return job.summary.get("objective", {}).get("metric", "val/loss")
        return "val/loss"


def load_study(root: Path) -> Study:
    """Every job under ``root``, with a progress bar when there are many."""
    dirs = find_job_dirs(root)
    jobs = [
        load_job(d, root)
        for d in tqdm(dirs, desc="read jobs", unit="job", disable=len(dirs) < 20, leave=False)
    ]
    varying = varying_keys(jobs)
    for job in jobs:
        parts = [f"{k}={short(job.overrides[k])}" for k in varying if k in job.overrides]
        alone = len(jobs) == 1 and job.config.get("name")  # a single run: the study's name
        job.label = " ".join(parts) or str(alone or job.name)
    return Study(root, jobs, varying)
