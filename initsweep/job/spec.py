"""The job spec: the composed config, read once into typed values and checked.

:func:`job_spec` is the one place (besides the config module and the CLI) that reads a
``DictConfig``: everything after it takes a :class:`JobSpec`. The enum-like keys and the types
were checked by the schemas when Hydra composed the config (:mod:`initsweep.config`); here come
the range and relation checks, each one line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from initsweep.config import TrackerConfig, TrainerConfig, WandbConfig
from initsweep.errors import invalid
from initsweep.search import Trial
from initsweep.train.metrics import METRIC_KEYS

log = logging.getLogger("initsweep")

# keys that may change between a run and its resumption without changing its numbers
VOLATILE = (
    "paths",
    "report",  # read by initsweep-report only
    "resources",  # the launcher's (a job may resume on another cluster or locally)
    "tracker",
    "trainer.progress",
    "trainer.device",
    "trainer.eval_batch_size",
)


@dataclass(frozen=True)
class JobSpec:
    """One job, as the rest of initsweep sees it.

    ``dataset``, ``model`` and ``optimizer`` are ``_target_`` nodes (plain dicts, interpolations
    resolved) that the job layer instantiates; ``init`` and ``bias`` are the init library's
    arguments; ``config`` is the whole resolved config, which ``summary.json``, the checkpoint
    and W&B keep.
    """

    name: str
    seeds: tuple[int, ...]
    objective: str
    output_dir: Path
    trainer: TrainerConfig
    tracker: TrackerConfig | WandbConfig
    dataset: dict[str, Any]
    model: dict[str, Any]
    optimizer: dict[str, Any]
    init: dict[str, Any]
    bias: dict[str, Any]
    trial: Trial | None  # set when the job is a trial of an Optuna search
    config: dict[str, Any]
    overrides: tuple[str, ...] = ()  # the job's command-line overrides (Hydra's task overrides)
    sweep_dir: str | None = None  # the multirun's dir; None for a single run
    volatile: tuple[str, ...] = VOLATILE  # config keys a resumed job may change


def job_spec(cfg: DictConfig) -> JobSpec:
    """Read and check a composed ``train.yaml`` config (raises :class:`ConfigError`)."""
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    overrides, sweep_dir, multirun = _hydra_job()
    search = config.get("search")
    if search is not None and search.get("trial") is None and not multirun:
        log.warning("search: a search runs as a multirun (-m); this run trains once")
    trial = None
    if search is not None and search.get("trial") is not None:
        trial = Trial(search["study_name"], search["storage"], search["trial"], search["pruner"])
    spec = JobSpec(
        name=config["name"],
        seeds=tuple(config["seeds"]),
        objective=config["objective"],
        output_dir=Path(config["paths"]["output_dir"]),
        trainer=OmegaConf.to_object(cfg.trainer),
        tracker=OmegaConf.to_object(cfg.tracker),
        dataset=config["dataset"],
        model=config["model"],
        optimizer=config["optimizer"],
        init=config["init"],
        bias=config["bias"],
        trial=trial,
        config=config,
        overrides=tuple(overrides),
        sweep_dir=sweep_dir,
    )
    validate(spec)
    return spec


def _hydra_job() -> tuple[list[str], str | None, bool]:
    """The job's command-line overrides, its sweep dir and whether it is part of a multirun.

    Outside a Hydra app (the compose API in tests) there is no HydraConfig: no overrides.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return [], None, False
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    return list(hc.overrides.task), hc.sweep.dir if multirun else None, multirun


def _check(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise invalid(key, value, allowed)


def validate(spec: JobSpec) -> None:
    """Range and relation checks (types and enum values were checked at compose time)."""
    seeds = list(spec.seeds)
    _check(len(seeds) > 0, "seeds", seeds, "give at least one seed, e.g. seeds='[0,1,2]'")
    _check(all(isinstance(s, int) for s in seeds), "seeds", seeds, "seeds must be integers")
    _check(len(set(seeds)) == len(seeds), "seeds", seeds, "seeds must not repeat")
    t = spec.trainer
    _check(t.epochs >= 1, "trainer.epochs", t.epochs, "must be >= 1")
    _check(t.batch_size >= 1, "trainer.batch_size", t.batch_size, "must be >= 1")
    _check(t.log_every >= 1, "trainer.log_every", t.log_every, "must be >= 1")
    if t.on_diverge == "penalize":
        penalty = t.diverge_penalty
        ok = penalty is not None and math.isfinite(penalty)
        _check(ok, "trainer.diverge_penalty", penalty, "on_diverge=penalize needs a finite number")
    lr = spec.optimizer.get("lr")
    _check(
        lr is not None and lr > 0 and math.isfinite(lr), "optimizer.lr", lr, "must be a number > 0"
    )
    dropout = spec.model.get("dropout", 0.0)
    _check(0.0 <= dropout < 1.0, "model.dropout", dropout, "must be in [0, 1)")
    allowed = sorted(set().union(*METRIC_KEYS.values()))
    val = spec.objective.replace("test/", "val/", 1)  # the held-out split is never selected on
    _check(val == spec.objective, "objective", spec.objective, f"test/ is held out; use {val}")
    _check(
        spec.objective in allowed, "objective", spec.objective, f"use one of {', '.join(allowed)}"
    )
    tracker = spec.tracker
    _check(
        tracker.histogram_every >= 0,
        "tracker.histogram_every",
        tracker.histogram_every,
        "must be >= 0 (0: init only)",
    )
    _check(tracker.probe_size >= 1, "tracker.probe_size", tracker.probe_size, "must be >= 1")
