"""How many trials of a search were pruned, and after which epochs.

A trial is ``PRUNED`` for one of two reasons: the study's pruner stopped it after an epoch (the
last epoch it reported, ``FrozenTrial.last_step``, and its summary's ``search.pruned_epoch``), or
its job stopped because every seed diverged (:func:`initsweep.search.seeds.all_diverged`; its
summary says ``status: diverged``). The end of a search, ``optuna_study.yaml`` and the report say
both, so a pruner that cuts a region early shows as a column of trials pruned at one epoch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from initsweep.search.seeds import all_diverged


def count_pruned(trials: Iterable[Any]) -> tuple[Counter, int]:
    """``(by epoch, diverged)``: the trials the pruner stopped, counted by the epoch they stopped
    after (``None``: no epoch reported), and the trials stopped because every seed diverged."""
    from optuna.trial import TrialState

    by_epoch: Counter = Counter()
    diverged = 0
    for t in trials:
        if t.state != TrialState.PRUNED:
            continue
        if all_diverged(t):
            diverged += 1
        else:
            by_epoch[t.last_step] += 1
    return by_epoch, diverged


def after_epochs(by_epoch: Mapping[int | None, int]) -> str:
    """``after epoch 2 (5 trials) or 12 (2)``."""
    epochs = sorted(by_epoch, key=lambda e: (e is None, e or 0))
    after = [f"{'?' if e is None else e} ({by_epoch[e]})" for e in epochs]
    after[0] = after[0][:-1] + (" trial)" if by_epoch[epochs[0]] == 1 else " trials)")
    return f"after epoch {' or '.join(after)}"


def pruned_line(by_epoch: Mapping[int | None, int], diverged: int) -> str:
    """``9 pruned: 7 by the pruner after epoch 2 (5 trials) or 12 (2), 2 because every seed
    diverged``; ``""`` when none was."""
    pruner = sum(by_epoch.values())
    if not pruner and not diverged:
        return ""
    parts = [f"{pruner} by the pruner {after_epochs(by_epoch)}"] if pruner else []
    if diverged:
        parts.append(f"{diverged} because every seed diverged")
    return f"{pruner + diverged} pruned: {', '.join(parts)}"


def pruned_record(trials: Iterable[Any]) -> dict[str, Any]:
    """For ``optuna_study.yaml`` (``pruned``): the counts and the line."""
    by_epoch, diverged = count_pruned(trials)
    return {
        "by_pruner": sum(by_epoch.values()),
        "after_epoch": {e: n for e, n in sorted(by_epoch.items(), key=lambda x: x[0] or 0)},
        "diverged": diverged,
        "line": pruned_line(by_epoch, diverged),
    }
