"""Pruning, which Hydra's Optuna sweeper lacks: a trial reports every epoch and may stop early.

The ``initsweep_optuna`` sweeper gives each job ``search.trial`` (its trial number),
``search.study_name`` and ``search.storage`` (the job spec reads them into a :class:`Trial`). The job opens that study
with the pruner of ``search.pruner`` and runs :class:`PruningHook` after each epoch: it reports
the epoch's objective (the same mean over seeds the job returns) and, when the pruner says so,
tells the study the trial is ``PRUNED`` and raises :class:`Pruned`, which the job catches to
write a summary with ``status: pruned``. The study is the only channel, so this works the same on the basic,
joblib and submitit launchers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import hydra

from initsweep.train.loop import CopyState

if TYPE_CHECKING:  # optuna is imported by the jobs of a search only (it costs ~0.4 s)
    import optuna
    from optuna.pruners import BasePruner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trial:
    """The search trial a job is: which study, where it is stored, its number, its pruner."""

    study_name: str
    storage: str
    number: int
    pruner: dict | None  # an ``optuna.pruners`` ``_target_`` node; None never prunes

    def record(self, pruned: Pruned | None = None) -> dict:
        """What ``summary.json`` keeps of the trial (under ``search``)."""
        return {
            "study": self.study_name,
            "storage": self.storage,
            "trial": self.number,
            "pruned_epoch": pruned.epoch if pruned else None,
        }


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

    def __init__(
        self, trial: optuna.trial.Trial, objective: Callable[[list[CopyState]], float]
    ) -> None:
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


def build_pruner(node: dict | None) -> BasePruner:
    """``search.pruner``: an ``optuna.pruners`` ``_target_`` node; ``null`` never prunes."""
    import optuna

    if node is None:
        return optuna.pruners.NopPruner()
    return hydra.utils.instantiate(node, _execution_whitelist_=["optuna.pruners.*"])


def open_trial(
    storage: str, study_name: str, number: int, pruner: BasePruner
) -> optuna.trial.Trial:
    """The running trial ``number`` of a stored study, to report to and ask whether to prune."""
    import optuna

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
    return optuna.trial.Trial(study, trial_id)


def trial_hooks(
    trial: Trial | None, objective: Callable[[list[CopyState]], float]
) -> list[PruningHook]:
    """``[PruningHook]`` when the job is a search trial (``trial``), else ``[]``.

    ``objective(copies)`` is the job's objective over its seeds, as the job will return it.
    """
    if trial is None:
        return []
    opened = open_trial(trial.storage, trial.study_name, trial.number, build_pruner(trial.pruner))
    if len(opened.study.directions) > 1:  # Optuna prunes single-objective studies only
        return []
    return [PruningHook(opened, objective)]
