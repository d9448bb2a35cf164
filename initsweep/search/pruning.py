"""Pruning, which Hydra's Optuna sweeper lacks: a trial reports every epoch and may stop early.

The ``initsweep_optuna`` sweeper gives each job ``search.trial`` (its trial number),
``search.study_name`` and ``search.storage``. The job opens that study with the pruner of
``search.pruner`` and runs :class:`PruningHook` after each epoch: it reports the epoch's objective
(the same mean over seeds the job returns) and, when the pruner says so, tells the study the
trial is ``PRUNED`` and raises :class:`Pruned`, which ``cli.run`` catches to write a summary
with ``status: pruned``. The study is the only channel, so this works the same on the basic,
joblib and submitit launchers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig

from initsweep.summary import objective_value
from initsweep.train.loop import CopyState

if TYPE_CHECKING:  # optuna is imported by the jobs of a search only (it costs ~0.4 s)
    from optuna.pruners import BasePruner
    from optuna.trial import Trial

log = logging.getLogger(__name__)


class Pruned(Exception):
    """The study's pruner stopped this trial after ``epoch`` (its objective then: ``value``)."""

    def __init__(self, trial: int, epoch: int, value: float) -> None:
        super().__init__(f"trial {trial} pruned after epoch {epoch} (objective {value:.4g})")
        self.trial, self.epoch, self.value = trial, epoch, value


class PruningHook:
    """``fit`` hook: report ``objective(copies)`` at step = epoch; prune when the pruner says so.

    A non-finite objective (every seed diverged, or one did under ``on_diverge=fail``) is not
    reported: the job runs out and returns NaN, and the sweeper records a *failed* trial rather
    than letting the pruner (which prunes on NaN) file it as pruned.
    """

    def __init__(self, trial: Trial, objective: Callable[[list[CopyState]], float]) -> None:
        self.trial, self.objective = trial, objective

    def on_epoch_end(self, epoch: int, step: int, pop, copies: list[CopyState]) -> None:
        value = self.objective(copies)
        if not math.isfinite(value):
            return
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            from optuna.trial import TrialState

            self.trial.study.tell(self.trial, state=TrialState.PRUNED)
            raise Pruned(self.trial.number, epoch, value)


def build_pruner(node: DictConfig | None) -> BasePruner:
    """``search.pruner``: an ``optuna.pruners`` ``_target_`` node; ``null`` never prunes."""
    import optuna

    if node is None:
        return optuna.pruners.NopPruner()
    return hydra.utils.instantiate(node, _execution_whitelist_=["optuna.pruners.*"])


def open_trial(storage: str, study_name: str, number: int, pruner: BasePruner) -> Trial:
    """The running trial ``number`` of a stored study, to report to and ask whether to prune."""
    import optuna
    from optuna.trial import Trial

    from initsweep.search.storage import open_storage

    store = open_storage(storage)
    trial_id = store.get_trial_id_from_study_id_trial_number(
        store.get_study_id_from_name(study_name), number
    )
    # the sampler is the sweeper's business; a random one keeps Trial() from building a TPE
    study = optuna.load_study(
        study_name=study_name,
        storage=store,
        sampler=optuna.samplers.RandomSampler(),
        pruner=pruner,
    )
    return Trial(study, trial_id)


def _multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _trial_node(cfg: DictConfig) -> DictConfig | None:
    search = cfg.get("search")
    return search if search is not None and search.get("trial") is not None else None


def trial_hooks(cfg: DictConfig) -> list[PruningHook]:
    """``[PruningHook]`` when this job is a trial of an ``initsweep_optuna`` search, else ``[]``."""
    search = _trial_node(cfg)
    if search is None:
        if cfg.get("search") is not None and not _multirun():
            log.warning("search: a search runs as a multirun (-m); this run trains once")
        return []
    trial = open_trial(
        search.storage, search.study_name, search.trial, build_pruner(search.get("pruner"))
    )
    if len(trial.study.directions) > 1:  # Optuna prunes single-objective studies only
        return []
    t = cfg.trainer

    def objective(copies: list[CopyState]) -> float:
        return objective_value(copies, cfg.objective, t.on_diverge, t.diverge_penalty)

    return [PruningHook(trial, objective)]


def search_fields(cfg: DictConfig, pruned: Pruned | None) -> dict:
    """What ``summary.json`` records of the search: ``{}`` outside one; ``status: pruned``."""
    search = _trial_node(cfg)
    if search is None:
        return {}
    fields = {
        "search": {
            "study": search.study_name,
            "storage": search.storage,
            "trial": search.trial,
            "pruned_epoch": pruned.epoch if pruned else None,
        }
    }
    return {**fields, "status": "pruned"} if pruned else fields
