"""The study's pruner: ``search.pruner``, with its ``auto`` values set from the search itself.

The default (``conf/search/pruner/patient_median.yaml``) is Optuna's own ``PatientPruner``
around its ``MedianPruner``: a trial is stopped only when it has made no new best for
``patience`` epochs and its best so far is worse than the median of the completed trials at the
same epoch, with

- ``patience: auto`` = :func:`patience_epochs`: an eighth of ``trainer.epochs``, at least 1;
- ``n_warmup_steps: auto`` = :func:`warmup_epochs`: half of ``trainer.epochs``; no trial is
  judged in the first half of its training;
- ``n_startup_trials: auto`` = :func:`startup_trials`: half of ``hydra.sweeper.n_trials``, at
  least 5; nothing is pruned before half of the search has completed.

Why: a deep network at its best gains can sit at the loss of a constant guess for its first
epochs and overtake the fast starters only late. On a 30-layer ReLU MLP (width 64, synthetic
2-class data, SGD at lr 0.01, 25 epochs; ``docs/how-to/search.md``) g = 1.2 stays at ln 2 up to
epoch 4 and ends best (val/loss 0.26), while g = 1.4 leads from epoch 2 and ends at 0.48. With
the gain searched over 0.8-2.0, Optuna's defaults (5 startup trials, a warm-up of 2 epochs)
stopped g = 1.14-1.29 after epochs 2-3; a warm-up of half the epochs stopped g = 1.20 at epoch
12; against the median of the first 10 trials, g = 1.18 and 1.20 (0.27 at the end, second best)
are still worse at epoch 12, but they improve every few epochs, so the ``PatientPruner`` keeps
them, while the gains that stay at ln 2 stop improving and are pruned.

The sweeper sets the numbers for each trial (:func:`resolve_pruner`), so a job's config records
those it was judged by; any other ``optuna.pruners`` node passes through, an ``auto`` key it has
no argument for dropped.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import hydra

from initsweep.errors import invalid

if TYPE_CHECKING:
    from optuna.pruners import BasePruner

AUTO = "auto"
WHY = {  # how each auto value is set, for the search's log
    "n_warmup_steps": "half of {epochs} epochs",
    "n_startup_trials": "half of {n_trials} trials, at least 5",
    "patience": "an eighth of {epochs} epochs, at least 1",
}


def warmup_epochs(epochs: int) -> int:
    """Epochs before a trial may be pruned: half of its ``epochs`` (the earliest prune is after
    epoch ``epochs // 2``, Optuna's ``step >= n_warmup_steps``); 1 for a 1- to 3-epoch job."""
    return max(1, epochs // 2)


def startup_trials(n_trials: int) -> int:
    """Completed trials before anything is pruned: half of ``n_trials``, at least 5 (Optuna's
    default, so a short search is judged against no fewer trials than Optuna would)."""
    return max(5, n_trials // 2)


def patience_epochs(epochs: int) -> int:
    """Epochs without a new best before a trial may be pruned (``PatientPruner``): an eighth of
    ``epochs``, at least 1 (3 of 25: longer than the ups and downs of an SGD curve there, so
    a trial that still improves is never stopped)."""
    return max(1, epochs // 8)


def resolve_pruner(node: dict | None, epochs: int | None, n_trials: int) -> dict[str, int | None]:
    """The values to give the ``auto`` keys of ``search.pruner``, by their dotted path below it
    (``{"patience": 3, "wrapped_pruner.n_warmup_steps": 12, …}``; ``{}`` when none is auto):
    ``n_warmup_steps`` and ``patience`` from ``epochs`` (``trainer.epochs``),
    ``n_startup_trials`` from ``n_trials`` (``hydra.sweeper.n_trials``); ``None`` (drop the key)
    where the pruner has no such argument."""
    if not node:
        return {}
    from_epochs = {"n_warmup_steps": warmup_epochs, "patience": patience_epochs}
    auto = [k for k in (*from_epochs, "n_startup_trials") if node.get(k) == AUTO]
    takes = _arguments(node.get("_target_")) if auto else set()
    values: dict[str, int | None] = {}
    for key in auto:
        if key not in takes:
            values[key] = None
        elif key in from_epochs and epochs is not None:
            values[key] = from_epochs[key](int(epochs))
        elif key == "n_startup_trials":
            values[key] = startup_trials(n_trials)
    for key, child in node.items():  # a wrapped pruner (PatientPruner's wrapped_pruner)
        if isinstance(child, dict) and "_target_" in child:
            inner = resolve_pruner(child, epochs, n_trials)
            values.update({f"{key}.{k}": v for k, v in inner.items()})
    return values


def _arguments(target: str | None) -> set[str]:
    """The keyword arguments an ``optuna.pruners`` class takes (all of them if it cannot be
    found: building it then says what is wrong)."""
    import inspect

    try:
        return set(inspect.signature(hydra.utils.get_class(str(target))).parameters)
    except (ImportError, ValueError, TypeError):
        return set(WHY)


def describe_pruner(node: dict | None, epochs: int | None, n_trials: int) -> str:
    """One line for the search's log, e.g. ``Pruner PatientPruner(patience=3 (auto: an eighth
    of 25 epochs, at least 1), wrapped_pruner=MedianPruner(n_startup_trials=10 (auto: …), …))``."""
    if not node:
        return "Pruner: none (search.pruner=null): every trial runs all its epochs"
    return f"Pruner {_describe(node, resolve_pruner(node, epochs, n_trials), epochs, n_trials)}"


def _describe(node: dict, auto: dict, epochs: int | None, n_trials: int, at: str = "") -> str:
    parts = []
    for key, value in node.items():
        path = f"{at}{key}"
        if key == "_target_" or auto.get(path, 0) is None:
            continue
        if isinstance(value, dict) and "_target_" in value:
            value = _describe(value, auto, epochs, n_trials, f"{path}.")
        elif path in auto:
            why = WHY[key].format(epochs=epochs, n_trials=n_trials)
            value = f"{auto[path]} (auto: {why})"
        parts.append(f"{key}={value}")
    return f"{str(node.get('_target_')).rpartition('.')[2]}({', '.join(parts)})"


def build_pruner(node: dict | None) -> BasePruner:
    """``search.pruner``: an ``optuna.pruners`` ``_target_`` node (a wrapped pruner inside it
    too); ``null`` never prunes."""
    import optuna

    if node is None:
        return optuna.pruners.NopPruner()
    left = _auto_left(node)
    if left:  # a job given a trial by hand, not by the initsweep sweeper
        raise invalid(left, AUTO, "the initsweep_optuna sweeper sets it; give a number")
    with warnings.catch_warnings():  # PatientPruner is "experimental" since Optuna 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return hydra.utils.instantiate(node, _execution_whitelist_=["optuna.pruners.*"])


def _auto_left(node: dict, at: str = "search.pruner") -> str | None:
    """The dotted key of the first ``auto`` value in ``node``, if any."""
    for key, value in node.items():
        if value == AUTO:
            return f"{at}.{key}"
        if isinstance(value, dict):
            found = _auto_left(value, f"{at}.{key}")
            if found:
                return found
    return None
