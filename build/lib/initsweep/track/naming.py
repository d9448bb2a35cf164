"""What a dashboard calls a job's runs: the study, the arm, each seed's name.

One *arm* is the seeds of one job configuration: the job's overrides without the seeds and
without the keys that do not change its numbers. W&B draws a group as one line with a band, so
the group is the arm (and the sweep it ran in, so that the same arm run again in a new sweep is
a new group); the job type is the study; a run's name is what varies in the sweep, short, plus
``s<seed>``. TensorBoard lists the same names as run directories. No torch, no Hydra: the job
layer finds the overrides (``initsweep.job.spec``) and hands them here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from initsweep.overrides import parse_overrides

# W&B's server limits; offline runs accept more, but `wandb sync` then fails (wandb/wandb#6402)
MAX_JOB_TYPE, MAX_GROUP, MAX_NAME, MAX_TAG = 64, 128, 128, 64


def fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters; a cut one ends in a hash of the whole, so two long
    values that share a prefix stay distinct."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 9]}~{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def is_noise(key: str, noise: Sequence[str]) -> bool:
    """Is ``key`` (or a key above it: ``tracker`` covers ``tracker.wandb.mode``) in ``noise``?"""
    key = key.replace("/", ".")
    return any(key == n or key.startswith(n + ".") for n in noise)


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """Each key by its last part (``init.gain`` → ``gain``), unless two keys share it."""
    leaf = {k: re.split(r"[./]", k)[-1] for k in keys}
    return {k: leaf[k] if list(leaf.values()).count(leaf[k]) == 1 else k for k in keys}


def short_value(value: str) -> str:
    """An override's value for a name: a long float (an Optuna trial's) to 4 significant digits."""
    try:
        return f"{float(value):.4g}" if len(value) > 8 and "." in value else value
    except ValueError:
        return value


def stamp(path: str | Path) -> str:
    """The last two parts of a sweep or run dir: ``<date>/<time>`` under Hydra's defaults."""
    return "/".join(Path(path).parts[-2:])


def _lookup(config: dict, key: str, default: str) -> Any:
    """The config's value at a dotted ``key`` when it is a leaf (``init.gain`` → 1.5), so W&B
    can filter numbers as numbers; a group choice (``init=zeros``) keeps the override's text."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return default if isinstance(node, (dict, list)) else node


@dataclass(frozen=True)
class RunLayout:
    """The study, arm and run names of one job, as W&B and TensorBoard show them."""

    study: str  # W&B job_type: the study (the sweep, or the Optuna study)
    arm: str  # the arm's overrides, ``defaults`` when there are none
    group: str  # W&B group: the arm in its sweep
    label: str  # what tells this job's runs from the sweep's other jobs
    varying: dict[str, Any] = field(default_factory=dict)  # the swept keys, with this job's values

    def name(self, seed: int) -> str:
        """A seed's run name: ``gain=1.5,activation=tanh,s0``."""
        return fit(f"{self.label},s{seed}", MAX_NAME)

    def dir_name(self, seed: int) -> str:
        """The run name as one directory name (``/`` and other odd characters as ``_``)."""
        return re.sub(r"[^\w.,=+-]", "_", self.name(seed))[:200]


def run_layout(
    name: str,
    overrides: Sequence[str],
    sweep_keys: Sequence[str] | None,
    noise: Sequence[str],
    where: str | Path,
    config: dict | None = None,
    study: str | None = None,
) -> RunLayout:
    """The layout of a job with these command-line ``overrides``.

    ``sweep_keys`` are the keys the sweep varies (``None``: not known, then every override of
    the arm names the runs); ``noise`` the keys that never tell arms apart (seeds, paths,
    trackers, ...); ``where`` the sweep dir (or a single run's dir), whose ``<date>/<time>``
    tells two sweeps of the same arms apart; ``study`` the study's name when it is not
    ``name:<date>/<time>`` (an Optuna study spans sweeps).
    """
    own = {k: v for k, v in parse_overrides(overrides).items() if not is_noise(k, noise)}
    swept = [k for k in own if sweep_keys is None or k in sweep_keys]
    # the swept keys first: W&B cuts long group names at the end
    arm = ",".join(f"{k}={own[k]}" for k in [*swept, *(k for k in own if k not in swept)])
    sweep = fit(stamp(where), 60)
    short = short_keys(swept or list(own))
    label = ",".join(f"{s}={short_value(own[k])}" for k, s in short.items()) or name
    return RunLayout(
        study=fit(study or f"{name}:{sweep}", MAX_JOB_TYPE),
        arm=arm or "defaults",
        group=f"{fit(arm or 'defaults', MAX_GROUP - len(sweep) - 3)} @ {sweep}",
        label=label,
        varying={k: _lookup(config or {}, k, own[k]) for k in swept},
    )
