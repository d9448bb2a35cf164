"""A search trial seen from its job: per-epoch reports, pruning, and the per-seed record.

The ``initsweep_optuna`` sweeper gives each job ``search.trial`` (its trial number),
``search.study_name`` and ``search.storage`` (the job spec reads them into a :class:`Trial`). The
job opens that trial (:func:`open_job_trial`) and

- runs :class:`PruningHook` after each epoch: it reports the epoch's objective (the same mean over
  seeds the job returns) and, when the pruner of ``search.pruner`` says so, records the seeds'
  values, tells the study the trial is ``PRUNED`` and raises :class:`Pruned`, which the job
  catches to write a summary with ``status: pruned``;
- at its end records each seed's objective (:func:`initsweep.search.seeds.seed_attrs`); a job whose
  seeds all diverged, with no value under its ``trainer.on_diverge``, prunes its own trial: Optuna
  keeps the last reported value, and TPE ranks pruned trials behind every completed one, so the
  sampler learns to avoid that region (a failed trial would teach it nothing; a made-up value
  could look better than a real one). Under ``on_diverge=penalize`` the penalty is the value.

The study is the only channel, so this works the same on the basic, joblib and submitit
launchers. Every call to the study is guarded (:meth:`JobTrial._safely`): a study that is
unreachable, or a trial already finished elsewhere (failed as stale by another search), costs the
job its reports, never its training; one warning says so.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from initsweep.errors import first_line
from initsweep.interrupt import signals_held
from initsweep.search.logs import route_optuna_logs
from initsweep.search.pruner import build_pruner

if TYPE_CHECKING:  # optuna is imported by the jobs of a search only (it costs ~0.4 s); the
    import optuna  # sweeper, which imports this package, needs no torch
    from optuna.pruners import BasePruner

    from initsweep.train.loop import CopyState

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


class JobTrial:
    """The running trial of a stored study, as its job sees it; every call is guarded."""

    def __init__(self, trial: optuna.trial.Trial) -> None:
        self.trial, self.number, self.live = trial, trial.number, True

    @property
    def can_prune(self) -> bool:  # Optuna prunes single-objective studies only
        return len(self.trial.study.directions) == 1

    def _safely(self, what: str, call: Callable[[], Any]) -> Any:
        """``call()``, or ``None`` once the study cannot be reached (one warning, then silence)."""
        if not self.live:
            return None
        try:
            with signals_held():  # never interrupted inside a transaction
                return call()
        except Exception as e:  # storage errors, a trial finished by someone else
            self.live = False
            log.warning(
                f"trial {self.number}: cannot {what} ({type(e).__name__}: {first_line(e)}); the "
                "job trains on without reporting to the study"
            )
            return None

    def report(self, value: float, epoch: int) -> bool:
        """Report ``value`` at step ``epoch``; whether the pruner says stop."""
        self._safely("report", lambda: self.trial.report(value, epoch))
        return bool(self._safely("ask the pruner", self.trial.should_prune))

    def record(self, attrs: dict[str, Any]) -> None:
        """Set user attributes (the per-seed values) before the trial ends."""
        for key, value in attrs.items():
            self._safely("record its seeds", lambda: self.trial.set_user_attr(key, value))  # noqa: B023

    def prune(self) -> bool:
        """Tell the study this trial is ``PRUNED`` (at its last reported value); whether it took."""
        from optuna.trial import TrialState

        self._safely("prune", lambda: self.trial.study.tell(self.trial, state=TrialState.PRUNED))
        return self.live


class PruningHook:
    """``fit`` hook: report ``objective(copies)`` at step = epoch; prune when the pruner says so.

    A non-finite objective (every seed diverged, or one did under ``on_diverge=fail``) is not
    reported: the pruner would prune on it, and the job records the trial itself at its end.
    ``attrs(copies)`` are the per-seed values recorded on the trial before it is pruned.
    """

    def __init__(
        self,
        trial: JobTrial,
        objective: Callable[[list[CopyState]], float],
        attrs: Callable[[list[CopyState]], dict] | None = None,
    ) -> None:
        self.trial, self.objective, self.attrs = trial, objective, attrs

    def on_epoch_end(self, epoch: int, step: int, pop, copies: list[CopyState]) -> None:
        value = self.objective(copies)
        if not math.isfinite(value) or not self.trial.report(value, epoch):
            return
        if self.attrs is not None:
            self.trial.record(self.attrs(copies))
        if self.trial.prune():
            raise Pruned(self.trial.number, epoch, value)


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


def open_job_trial(trial: Trial | None) -> JobTrial | None:
    """The job's trial when it is one of a search (``trial``), else ``None``.

    A study that cannot be opened is one warning: the job trains and returns its objective to the
    sweeper all the same.
    """
    if trial is None:
        return None
    pruner = build_pruner(trial.pruner)  # a bad pruner node is the user's mistake: it raises
    route_optuna_logs()  # Optuna's INFO lines to the job's train.log, not the terminal
    try:
        with signals_held():
            return JobTrial(open_trial(trial.storage, trial.study_name, trial.number, pruner))
    except Exception as e:
        log.warning(
            f"trial {trial.number}: cannot open study {trial.study_name!r} in {trial.storage} "
            f"({type(e).__name__}: {first_line(e)}); the job trains without reporting to it"
        )
        return None
