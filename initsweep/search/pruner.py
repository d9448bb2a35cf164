"""The study's pruner: ``search.pruner``, with its ``auto`` values set from the search itself.

The default (``conf/search/optuna.yaml``) is Optuna's own ``MedianPruner``, which prunes a trial
whose best value so far is worse than the median of the completed trials at the same epoch, with

- ``n_warmup_steps: auto`` = :func:`warmup_epochs`: half of ``trainer.epochs``; no trial is
  judged in the first half of its training;
- ``n_startup_trials: auto`` = :func:`startup_trials`: half of ``hydra.sweeper.n_trials``
  (at least 5); nothing is pruned before half of the search has completed.

Why: a deep network at the best gains can sit at the loss of a constant guess for its first
epochs and overtake the fast starters only late. On a 30-layer ReLU MLP (width 64, synthetic
2-class data, SGD lr 0.01, 25 epochs; ``docs/how-to/search.md``) g = 1.2 is at ln 2 until epoch
4 and ends best (0.26), while g = 1.4 leads from epoch 2 and ends at 0.48. Optuna's own defaults
here (5 startup trials, a warm-up of 2 epochs) stopped the band g = 1.14-1.29 after epochs 2-3
once the fast starters had completed; a warm-up of half the epochs alone still stopped g = 1.20
at epoch 12, against a median of fast starters; with half the trials as startup the median is
that of the sampler's exploration (TPE samples its first 10 at random), and the band completed.

The sweeper sets the numbers for each trial (:func:`resolve_pruner`), so a job's config records
those it was judged by; any other ``optuna.pruners`` node passes through, an ``auto`` key it has
no argument for dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import hydra

from initsweep.errors import invalid

if TYPE_CHECKING:
    from optuna.pruners import BasePruner

AUTO = "auto"


def warmup_epochs(epochs: int) -> int:
    """Epochs before a trial may be pruned: half of its ``epochs`` (the earliest prune is after
    epoch ``epochs // 2``, Optuna's ``step >= n_warmup_steps``); 1 for a 1- to 3-epoch job."""
    return max(1, epochs // 2)


def startup_trials(n_trials: int) -> int:
    """Completed trials before anything is pruned: half of ``n_trials``, at least 5 (Optuna's
    default, so a short search is judged against no fewer trials than Optuna would)."""
    return max(5, n_trials // 2)


def resolve_pruner(node: dict | None, epochs: int | None, n_trials: int) -> dict[str, int | None]:
    """The values to give the ``auto`` keys of ``search.pruner`` (``{}`` when none is auto):
    ``n_warmup_steps`` from ``epochs`` (``trainer.epochs``), ``n_startup_trials`` from
    ``n_trials`` (``hydra.sweeper.n_trials``); ``None`` (drop the key) where the pruner has no
    such argument, so ``search.pruner._target_=optuna.pruners.HyperbandPruner`` alone works."""
    if not node:
        return {}
    auto = [k for k in ("n_warmup_steps", "n_startup_trials") if node.get(k) == AUTO]
    takes = _arguments(node.get("_target_")) if auto else set()
    values: dict[str, int | None] = {k: None for k in auto if k not in takes}
    if "n_warmup_steps" in auto and "n_warmup_steps" in takes and epochs is not None:
        values["n_warmup_steps"] = warmup_epochs(int(epochs))
    if "n_startup_trials" in auto and "n_startup_trials" in takes:
        values["n_startup_trials"] = startup_trials(n_trials)
    return values


def _arguments(target: str | None) -> set[str]:
    """The keyword arguments an ``optuna.pruners`` class takes (all of them if it cannot be
    found: building it then says what is wrong)."""
    import inspect

    try:
        return set(inspect.signature(hydra.utils.get_class(str(target))).parameters)
    except (ImportError, ValueError, TypeError):
        return {"n_warmup_steps", "n_startup_trials"}


def describe_pruner(node: dict | None, epochs: int | None, n_trials: int) -> str:
    """One line for the search's log: ``Pruner MedianPruner: n_startup_trials=10 (auto: half of
    20 trials, at least 5), n_warmup_steps=12 (auto: half of 25 epochs)``."""
    if not node:
        return "Pruner: none (search.pruner=null): every trial runs all its epochs"
    auto = resolve_pruner(node, epochs, n_trials)
    node = {k: v for k, v in node.items() if k not in auto or auto[k] is not None}
    why = {
        "n_startup_trials": f"auto: half of {n_trials} trials, at least 5",
        "n_warmup_steps": f"auto: half of {epochs} epochs",
    }
    parts = [
        f"{key}={auto[key]} ({why[key]})" if key in auto else f"{key}={value}"
        for key, value in node.items()
        if key != "_target_"
    ]
    name = str(node.get("_target_")).rpartition(".")[2]
    return f"Pruner {name}: {', '.join(parts)}" if parts else f"Pruner {name} (its defaults)"


def build_pruner(node: dict | None) -> BasePruner:
    """``search.pruner``: an ``optuna.pruners`` ``_target_`` node; ``null`` never prunes."""
    import optuna

    if node is None:
        return optuna.pruners.NopPruner()
    for key in ("n_warmup_steps", "n_startup_trials"):
        if node.get(key) == AUTO:  # a job given a trial by hand, not by the initsweep sweeper
            raise invalid(
                f"search.pruner.{key}", AUTO, "the initsweep_optuna sweeper sets it; give a number"
            )
    return hydra.utils.instantiate(node, _execution_whitelist_=["optuna.pruners.*"])
