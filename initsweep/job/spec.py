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

from initsweep.config import (
    NOT_ARM,
    TARGETS,
    TRACKER_TARGETS,
    VOLATILE,
    TrackerConfig,
    TrainerConfig,
)
from initsweep.errors import invalid
from initsweep.schema import OptimizerNumbers, check_keys, check_numbers
from initsweep.search import Trial
from initsweep.targets import user_patterns
from initsweep.track.naming import RunLayout, run_layout
from initsweep.train.every import parse_every
from initsweep.train.metrics import METRIC_KEYS

log = logging.getLogger("initsweep")

# VOLATILE (keys a resumed job may change without changing its numbers) and NOT_ARM (override
# keys that never tell two arms apart) are derived from the schemas' field meanings
# (initsweep.config, initsweep.schema); their readers import them from here.
__all__ = ["NOT_ARM", "VOLATILE", "JobSpec", "job_spec", "sweep_keys", "validate"]


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
    tracker: TrackerConfig
    dataset: dict[str, Any]
    model: dict[str, Any]
    optimizer: dict[str, Any]
    init: dict[str, Any]
    bias: dict[str, Any]
    trial: Trial | None  # set when the job is a trial of an Optuna search
    config: dict[str, Any]
    targets: tuple[str, ...] = tuple(TARGETS)  # what the nodes may build, allow_targets included
    tracker_targets: tuple[str, ...] = tuple(TRACKER_TARGETS)  # what ``tracker.*`` may build
    overrides: tuple[str, ...] = ()  # the job's command-line overrides (Hydra's task overrides)
    sweep_dir: str | None = None  # the multirun's dir; None for a single run
    sweep_keys: tuple[str, ...] | None = None  # the keys its sweep varies; None: not known
    tags: tuple[str, ...] = ()  # the top-level ``tags``: W&B tags, summary.json, the report
    volatile: tuple[str, ...] = VOLATILE  # config keys a resumed job may change

    @property
    def runs(self) -> RunLayout:
        """The job's study, arm and run names (W&B's job type, group and names; TensorBoard's
        run dirs): the overrides its sweep varies name its runs; a search trial's study is the
        search's."""
        return run_layout(
            self.name,
            self.overrides,
            self.sweep_keys,
            NOT_ARM,
            self.sweep_dir or self.output_dir,
            self.config,
            study=self.trial.study_name if self.trial else None,
        )


def job_spec(cfg: DictConfig) -> JobSpec:
    """Read and check a composed ``train.yaml`` config (raises :class:`ConfigError`)."""
    check_keys(cfg)
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    overrides, sweep_dir, multirun, sweep_keys = _hydra_job()
    search = config.get("search")
    if search is not None and search.get("trial") is None and not multirun:
        log.warning("search: a search runs as a multirun (-m); this run trains once")
    trial = None
    if search is not None and search.get("trial") is not None:
        trial = Trial(search["study_name"], search["storage"], search["trial"], search["pruner"])
    users = user_patterns(config.get("allow_targets"))
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
        targets=(*TARGETS, *users),
        tracker_targets=(*TRACKER_TARGETS, *users),
        overrides=tuple(overrides),
        sweep_dir=sweep_dir,
        sweep_keys=sweep_keys,
        tags=_tags(config.get("tags", [])),
    )
    validate(spec)
    return spec


def _hydra_job() -> tuple[list[str], str | None, bool, tuple[str, ...] | None]:
    """The job's command-line overrides, its sweep dir, whether it is part of a multirun, and
    the keys its sweep varies (:func:`sweep_keys`).

    Outside a Hydra app (the compose API in tests) there is no HydraConfig: no overrides.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return [], None, False, None
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return list(hc.overrides.task), None, False, ()
    return list(hc.overrides.task), hc.sweep.dir, True, sweep_keys(Path(hc.sweep.dir))


def sweep_keys(sweep_dir: Path) -> tuple[str, ...] | None:
    """The keys a multirun sweeps, from the sweep's own config (``multirun.yaml``, which Hydra's
    sweeper and ours write before the first job): its command line's sweep overrides
    (``init=a,b``, ``range(...)``, ``interval(...)``) and a preset's ``hydra.sweeper.params``.

    A job sees only its own values (``init=a``), so it cannot tell what varies from them.
    ``None`` when the file is missing or unreadable (another sweeper).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        sweep = OmegaConf.load(sweep_dir / "multirun.yaml").hydra
        params = sweep.sweeper.get("params") or {}
        args = [*(f"{k}={v}" for k, v in params.items()), *sweep.overrides.task]
        parsed = OverridesParser.create().parse_overrides(args)
    except Exception as e:  # the names then fall back to every override of the arm
        log.debug("no sweep keys from %s: %s", sweep_dir, e)
        return None
    return tuple(
        dict.fromkeys(o.key_or_group.lstrip("+~") for o in parsed if o.is_sweep_override())
    )


def _tags(tags: Any) -> tuple[str, ...]:
    ok = isinstance(tags, list) and all(isinstance(t, (str, int, float)) for t in tags)
    _check(ok, "tags", tags, "give a list of words, e.g. tags='[baseline,digits]'")
    return tuple(str(t) for t in tags)


def check_name(key: str, value: object) -> None:
    """``name`` (and ``search.study_name``) name files, such as the study's database
    ``outputs/optuna/<name>-gain.db``: a plain name, which cannot point outside the outputs."""
    ok = isinstance(value, str) and value not in ("", ".", "..")
    _check(
        ok and not any(c in value for c in "/\\\0"),
        key,
        value,
        "a study name is a plain name, without / or \\ (it names files, such as the study's "
        "database outputs/optuna/<name>.db)",
    )


def _check(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise invalid(key, value, allowed)


def validate(spec: JobSpec) -> None:
    """Range and relation checks (types and enum values were checked at compose time; the
    optimizer's numbers, in an untyped node, here)."""
    check_name("name", spec.name)
    check_numbers(spec.optimizer, OptimizerNumbers, "optimizer")
    for key in ("dataset", "model", "optimizer"):
        node = getattr(spec, key)
        _check(
            isinstance(node, dict) and isinstance(node.get("_target_"), str),
            key,
            node,
            f"the {key} config is empty or names nothing to build: give it a _target_",
        )
    seeds = list(spec.seeds)
    _check(len(seeds) > 0, "seeds", seeds, "give at least one seed, e.g. seeds='[0,1,2]'")
    _check(all(isinstance(s, int) for s in seeds), "seeds", seeds, "seeds must be integers")
    _check(len(set(seeds)) == len(seeds), "seeds", seeds, "seeds must not repeat")
    t = spec.trainer
    _check(t.epochs >= 1, "trainer.epochs", t.epochs, "must be >= 1")
    _check(t.batch_size >= 1, "trainer.batch_size", t.batch_size, "must be >= 1")
    _check(t.log_every >= 1, "trainer.log_every", t.log_every, "must be >= 1")
    _check(t.eval_batch_size >= 1, "trainer.eval_batch_size", t.eval_batch_size, "must be >= 1")
    parse_every(t.checkpoint_every)  # epochs or seconds, one line naming the key otherwise
    ok = t.shards is None or t.shards >= 1
    _check(ok, "trainer.shards", t.shards, "must be >= 1, or null (one per CPU thread)")
    # the data order's generator is seeded with data_seed * 100003 + epoch, a 64-bit number
    bound = 2**47
    _check(
        -bound < t.data_seed < bound,
        "trainer.data_seed",
        t.data_seed,
        "must be in (-2**47, 2**47)",
    )
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
