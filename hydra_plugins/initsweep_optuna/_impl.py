"""The search loop: the official sweeper's, plus pruned trials, a checked space and result files.

What changes against ``hydra_optuna_sweeper._impl.OptunaSweeperImpl.sweep``:

- the search space is checked before any job (unknown key, inverted or non-positive log interval)
  and a mistake ends the sweep with one line and exit code 2, like a job's config error;
- the storage is fixed once, when the search starts (:func:`initsweep.search.storage.locate_study`:
  relative to the directory it starts in, or where the sweep dir's record says), printed, and
  passed to every job with the trial number (quoted for Hydra's override grammar), so jobs on any
  launcher open the same study, report per-epoch values and record their per-seed values;
- trials survive their workers: SQLite waits for locks; the sweeper keeps a heartbeat for the
  trials its jobs are running, so a search that was killed leaves trials that the next search on
  the study fails and re-queues (Optuna's ``RetryHeartbeatStaleTrialCallback``); a launcher that
  raises (a killed joblib worker) fails that batch's trials and re-queues them, without counting
  them towards ``max_failure_rate`` (a worker's death is not the trials' fault), and the search
  goes on; a launcher that refuses the jobs (:class:`~initsweep.errors.ConfigError`: SLURM can
  never start them) fails the batch and ends the search in one line;
- each job's pruner gets its ``auto`` values (``initsweep.search.pruner``) from its epochs and
  ``n_trials``; Optuna's and the sweeper's log lines go to ``<sweep dir>/search.log`` too, and
  Optuna's INFO lines no longer to the terminal (``initsweep.search.logs``);
- a job's outcome is told guardedly (:meth:`InitsweepOptunaSweeperImpl._tell`): an exception is a
  failed trial with its message (``fail_reason``), a value that is not a number (or not one per
  objective) or not finite is a failed trial, a trial its job already ended (pruned, or diverged)
  is left as it is; only the jobs' exceptions count towards ``max_failure_rate``, as a share of
  ``n_trials``;
- ``multirun.yaml`` in the sweep dir, as Hydra's basic sweeper writes it (jobs name their W&B and
  TensorBoard runs by the keys it sweeps);
- after the search: ``optimization_results.yaml`` as before, plus the trials CSV, the plots, a
  table of the best trials and which of them cannot be told apart across seeds
  (``initsweep.search.results``).

It runs any Hydra app: ``objective`` (initsweep's metric key) is read only where it exists.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import re
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, Literal, cast

import optuna
from hydra.core.utils import JobReturn
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl
from omegaconf import DictConfig, OmegaConf
from optuna.exceptions import ExperimentalWarning, StorageInternalError, UpdateFinishedTrialError
from optuna.trial import FrozenTrial, Trial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from hydra_plugins.initsweep_optuna.space import parse_space
from initsweep.errors import ConfigError, first_line
from initsweep.files import STUDY_OUTPUTS
from initsweep.search.logs import search_log
from initsweep.search.pruner import describe_pruner, resolve_pruner
from initsweep.search.results import format_trials_table, write_study_outputs, write_study_record
from initsweep.search.storage import Heartbeat, is_journal, locate_study, open_storage
from initsweep.summary import direction as metric_direction

log = logging.getLogger(__name__)

STORAGE_ERRORS = (StorageInternalError, SQLAlchemyError)


class InitsweepOptunaSweeperImpl(OptunaSweeperImpl):
    def __init__(
        self,
        *args: Any,
        heartbeat_interval: int = 30,
        grace_period: int = 120,
        max_retry: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.heartbeat = Heartbeat(heartbeat_interval, grace_period, max_retry)
        self.last_error = ""

    def _get_directions(self) -> list[str]:
        if self.direction == "auto":  # the official sweeper's minimize for another app
            objective = OmegaConf.select(self.config, "objective", default=None)
            return [metric_direction(objective) if objective is not None else "minimize"]
        return super()._get_directions()

    def sweep(self, arguments: list[str]) -> None:
        try:
            with search_log(self.sweep_dir, "hydra", "hydra_plugins"):
                self._sweep(arguments)
        except ConfigError as e:
            # a user mistake in the search itself: one line, exit 2, as the job does
            print(f"initsweep: error: {e}", file=sys.stderr)
            sys.exit(2)
        except STORAGE_ERRORS as e:
            print(
                f"initsweep: error: the study's storage failed ({type(e).__name__}: "
                f"{first_line(e)}); every trial told so far is stored: run the same command "
                "again to continue",
                file=sys.stderr,
            )
            sys.exit(1)

    def _sweep(self, arguments: list[str]) -> None:
        self._process_searchspace_config()
        # as Hydra's basic sweeper does: the jobs read the swept keys from it to name their runs
        Path(self.sweep_dir).mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, Path(self.sweep_dir) / "multirun.yaml")
        # an initsweep search (the app has the `search` preset's node): its jobs open their trial,
        # and an empty space is a mistake rather than n_trials identical jobs
        initsweep = "search" in self.config
        space, fixed, fixed_overrides = parse_space(
            [*self._parse_sweeper_params_config(), *arguments],
            self.config,
            allow_empty=not initsweep or self.custom_search_space_extender is not None,
        )
        if self.n_trials < 0:
            raise ConfigError(f"hydra.sweeper.n_trials={self.n_trials} is invalid: must be >= 0")
        if isinstance(self.sampler, functools.partial) and (
            self.sampler.func == optuna.samplers.GridSampler
        ):
            grid = {k: self._to_grid_sampler_choices(d) for k, d in space.items()}
            self.sampler = self.sampler(grid)
            self.n_trials = min(self.n_trials, math.prod(len(v) for v in grid.values()))

        directions = self._get_directions()
        objective = OmegaConf.select(self.config, "objective", default=None)
        if objective is not None and len(directions) != 1:
            raise ConfigError(
                f"hydra.sweeper.direction={directions} is invalid: an initsweep job returns one "
                f"value (objective={objective})"
            )
        study, url = self._open_study(directions, objective)
        self._fail_stale(study)
        if url is not None and initsweep:
            node = OmegaConf.select(self.config, "search.pruner")
            epochs = OmegaConf.select(self.config, "trainer.epochs", default=None)
            node = OmegaConf.to_container(node) if isinstance(node, DictConfig) else None
            log.info(describe_pruner(node, epochs, self.n_trials))

        failures = launched = 0
        before = len(study.trials)
        self.job_idx = max(self.job_idx, before)  # never reuse a job dir of this study
        while launched < self.n_trials:
            batch = min(self.n_jobs, self.n_trials - launched)
            trials = [ask(study) for _ in range(batch)]
            overrides = self._configure_trials(trials, space, fixed, fixed_overrides)
            if url is not None and initsweep:
                overrides = [
                    (*o, *trial_overrides(t.number, study.study_name, url), *self._pruner(t))
                    for o, t in zip(overrides, trials)
                ]
            # job dir = trial number (a re-run into the same sweep dir adds dirs, never reuses
            # one), unless another sweep on the same study took numbers in between
            numbers = [t.number for t in trials]
            if (
                numbers == list(range(numbers[0], numbers[0] + batch))
                and numbers[0] >= self.job_idx
            ):
                self.job_idx = numbers[0]
            returns, lost = [], ""
            with Heartbeats(study, trials):
                try:
                    returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
                except ConfigError as e:  # the launcher refuses the jobs (SLURM cannot start
                    self._lost(study, trials, first_line(e), retry=False)  # them): ends it
                    raise
                except Exception as e:  # the launcher itself: a killed worker, a lost SLURM job
                    lost = f"{type(e).__name__}: {first_line(e)}"
                except BaseException:  # Ctrl-C, SIGTERM: nothing of the batch stays RUNNING
                    self._lost(study, trials, "the search was interrupted")
                    raise
            self.job_idx += batch
            failures += sum(self._tell(study, t, r) for t, r in zip(trials, returns))
            requeued = []
            if lost or len(returns) < batch:
                requeued, given_up = self._requeue(study, trials, lost or "no result came back")
                failures += len(given_up)  # lost again after max_retry: those count
            launched += batch - len(requeued)  # a re-queued trial runs in a later batch
            log.info(f"{launched}/{self.n_trials} trials done; {describe_best(study)}")
            if failures > self.max_failure_rate * self.n_trials:
                break

        self._write_results(study, directions)
        written = write_study_outputs(self.sweep_dir, study)
        print(format_trials_table(study, title=f"study {study.study_name!r}: best trials"))
        log.info(f"Search results: {', '.join(str(p) for p in written)}")
        if failures > self.max_failure_rate * self.n_trials:
            # the jobs' own errors are in the log above; a sweeper traceback would add nothing
            print(
                f"initsweep: error: {failures} of {launched} trials raised (the last: "
                f"{self.last_error}), more than hydra.sweeper.max_failure_rate="
                f"{self.max_failure_rate} of {self.n_trials}",
                file=sys.stderr,
            )
            sys.exit(1)

    def _open_study(
        self, directions: list[str], objective: str | None
    ) -> tuple[optuna.Study, str | None]:
        """Create or load the study where it is to live; record and print where that is."""
        cwd = Path(self.config.hydra.runtime.cwd)
        record = Path(self.sweep_dir) / STUDY_OUTPUTS["study"]
        url, how = locate_study(self.storage, self.study_name, cwd, record)
        if url is not None and self.study_name is None:
            raise ConfigError(
                "hydra.sweeper.study_name=None is invalid: name the study (search.study_name)"
            )
        heartbeat = None if url is None or is_journal(url) else self.heartbeat
        storage = open_storage(url, heartbeat)
        try:
            study = optuna.create_study(
                study_name=self.study_name,
                storage=storage,
                sampler=self.sampler,
                directions=cast(list[Literal["minimize", "maximize"]], directions),
                load_if_exists=True,
            )
        except ValueError as e:  # e.g. the stored study optimises in the other direction
            raise ConfigError(f"study {self.study_name!r} in {url}: {e}") from None
        if objective is not None:
            study.set_user_attr("objective", objective)
            with warnings.catch_warnings():  # experimental since Optuna 3.2
                warnings.simplefilter("ignore", ExperimentalWarning)
                study.set_metric_names([objective])  # optuna-dashboard's axis label
        write_study_record(
            self.sweep_dir,
            {
                "study_name": study.study_name,
                "storage": url,
                "storage_given": None if self.storage is None else str(self.storage),
                "started_in": str(cwd),
                "objective": objective,
                "directions": [d.lower() for d in directions],
            },
        )
        log.info(
            f"Study {study.study_name!r} in {url or 'memory'} ({how}): {len(study.trials)} trials so far"
        )
        log.info(
            f"Sampler {type(self.sampler).__name__}, directions {directions}, "
            f"{self.n_trials} trials to run"
        )
        if url is None:
            log.warning("storage=null: an in-memory study, nothing persists and nothing is pruned")
        return study, url

    def _pruner(self, trial: Trial) -> tuple[str, ...]:
        """``++search.pruner.<key>=<n>`` for each ``auto`` key of the job's pruner, from its
        ``trainer.epochs`` and ``n_trials``, or ``~search.pruner.<key>`` where the pruner takes
        no such argument (:func:`initsweep.search.pruner.resolve_pruner`)."""
        node = OmegaConf.select(self.config, "search.pruner", default=None)
        if not isinstance(node, DictConfig):
            return ()
        epochs = trial.params.get("trainer.epochs")
        if epochs is None:
            epochs = OmegaConf.select(self.config, "trainer.epochs", default=None)
        values = resolve_pruner(OmegaConf.to_container(node), epochs, self.n_trials)
        return tuple(
            f"~search.pruner.{key}" if value is None else f"++search.pruner.{key}={value}"
            for key, value in values.items()
        )

    def _fail_stale(self, study: optuna.Study) -> None:
        """Fail the trials of an earlier search that died (stale heartbeat) and re-queue them."""
        running = {t.number for t in study.get_trials(False, states=(TrialState.RUNNING,))}
        if not running:
            return
        if heartbeat_interval(study) is None:
            log.warning(
                f"Trials {sorted(running)} are RUNNING in the study: another search runs, or one "
                "was killed (this storage has no heartbeat to tell which)"
            )
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        stale = [
            t.number
            for t in study.get_trials(False, states=(TrialState.FAIL,))
            if t.number in running
        ]
        if stale:
            log.warning(
                f"Trials {stale} were left RUNNING by a search that stopped (no heartbeat for "
                f"{self.heartbeat.grace_s} s): failed, and re-queued up to "
                f"{self.heartbeat.max_retry} time(s)"
            )

    def _tell(self, study: optuna.Study, trial: Trial, ret: JobReturn) -> int:
        """Record one job's outcome; return 1 if the job raised (counts as a failure)."""
        try:
            result = ret.return_value  # re-raises the job's exception
        except Exception as e:
            kind = getattr(e, "kind", type(e).__name__)  # a job's reported failure names its own
            self.last_error = f"{kind}: {first_line(e)}"
            fail(study, trial, self.last_error)
            return 1
        values, why = trial_values(result, len(study.directions))
        if values is None:
            if is_finished(study, trial):  # its job pruned it (the pruner, or all seeds diverged)
                log.info(f"Trial {trial.number} was ended by its job")
            else:
                fail(study, trial, why)
            return 0
        finish(study, trial, values=values)
        return 0

    def _lost(
        self, study: optuna.Study, trials: list[Trial], reason: str, retry: bool = True
    ) -> list[int]:
        """Fail every trial of a batch whose job did not come back (``reason``) and, with
        ``retry``, re-queue it up to ``max_retry`` times, as Optuna's stale-trial callback does
        (its params, without the failed run's attributes); return the numbers re-queued."""
        self.last_error = reason
        requeue = optuna.storages.RetryHeartbeatStaleTrialCallback
        with warnings.catch_warnings():  # experimental since Optuna 2.8
            warnings.simplefilter("ignore", ExperimentalWarning)
            callback = requeue(self.heartbeat.max_retry)
            requeued = []
            for trial in [t for t in trials if not is_finished(study, t)]:
                fail(study, trial, f"its job did not come back: {reason}")
                if not retry:
                    continue
                frozen = copy.copy(study.get_trials(deepcopy=False)[trial.number])
                frozen.user_attrs = {}  # fail_reason and a partial run's seeds stay with it
                before = len(study.get_trials(deepcopy=False))
                callback(study, frozen)
                if len(study.get_trials(deepcopy=False)) > before:
                    requeued.append(trial.number)
        return requeued

    def _requeue(
        self, study: optuna.Study, trials: list[Trial], reason: str
    ) -> tuple[list[int], list[int]]:
        """A batch the launcher lost (a killed worker takes joblib's whole batch with it): its
        unfinished trials run again in a later batch, not counted as failures, since a worker's
        death is not theirs; a trial lost ``max_retry`` times is a failure. Returns
        ``(re-queued, given up)`` trial numbers."""
        unfinished = [t.number for t in trials if not is_finished(study, t)]
        requeued = self._lost(study, trials, reason)
        given_up = [n for n in unfinished if n not in requeued]
        log.warning(
            f"The launcher lost trials {unfinished} ({reason}): "
            + (f"re-queued {requeued}" if requeued else "")
            + ("; " if requeued and given_up else "")
            + (f"{given_up} failed, lost {self.heartbeat.max_retry + 1} times" if given_up else "")
            + "; the search goes on"
        )
        return requeued, given_up

    def _write_results(self, study: optuna.Study, directions: list[str]) -> None:
        """``optimization_results.yaml``, as the official sweeper writes it."""
        results: dict[str, Any] = {"name": "optuna"}
        if len(directions) > 1:
            results["solutions"] = [
                {"params": t.params, "values": t.values} for t in study.best_trials
            ]
        elif any(t.state == TrialState.COMPLETE for t in study.trials):
            results.update(best_params=study.best_trial.params, best_value=study.best_trial.value)
            log.info(f"Best parameters: {study.best_trial.params}")
            log.info(f"Best value: {study.best_trial.value}")
        else:
            results.update(best_params=None, best_value=None)
            log.warning("No trial completed: no best parameters")
        Path(self.sweep_dir).mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(results), f"{self.sweep_dir}/optimization_results.yaml")


class Heartbeats:
    """While a batch runs, record a heartbeat for each of its trials every interval: if the
    search dies, its trials go stale and the next search on the study fails and re-queues them.
    Nothing happens for a storage without heartbeat (in memory, a journal file)."""

    def __init__(self, study: optuna.Study, trials: list[Trial]) -> None:
        self.storage, self.ids = study._storage, [t._trial_id for t in trials]
        self.interval = heartbeat_interval(study)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self.stop.is_set():
            for trial_id in self.ids:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception as e:  # a locked storage: the next beat is within the grace
                    log.debug(f"heartbeat of trial id {trial_id} missed: {e}")
            self.stop.wait(self.interval)

    def __enter__(self) -> Heartbeats:
        if self.interval is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()


def heartbeat_interval(study: optuna.Study) -> int | None:
    """Seconds between the heartbeats of the study's storage; ``None`` where it keeps none."""
    return getattr(study._storage, "get_heartbeat_interval", lambda: None)()


def ask(study: optuna.Study) -> Trial:
    """``study.ask()`` (a re-queued trial first), without Optuna's warning that heartbeats are
    meant for ``Study.optimize``: here the sweeper keeps them (:class:`Heartbeats`)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
        return study.ask()


def trial_values(result: Any, n: int) -> tuple[list[float] | None, str]:
    """``(values, "")`` for a usable job return (a number, or ``n`` numbers), else
    ``(None, why not)``."""
    try:
        values = [float(result)] if n == 1 else [float(v) for v in result]
    except (TypeError, ValueError):
        return None, f"returned {result!r}, not {'a number' if n == 1 else f'{n} numbers'}"
    if len(values) != n:
        return None, f"returned {len(values)} values for {n} objectives"
    if not all(math.isfinite(v) for v in values):
        return None, f"returned {result!r}"
    return values, ""


def is_finished(study: optuna.Study, trial: Trial) -> bool:
    """Whether someone (its job) already ended the trial."""
    return study.get_trials(deepcopy=False)[trial.number].state.is_finished()


def fail(study: optuna.Study, trial: Trial, reason: str) -> None:
    """Record a failed trial with its reason (user attribute ``fail_reason``)."""
    log.warning(f"Trial {trial.number} failed: {reason}")
    try:
        trial.set_user_attr("fail_reason", reason)
    except UpdateFinishedTrialError:
        return
    finish(study, trial, state=TrialState.FAIL)


def finish(study: optuna.Study, trial: Trial, **tell: Any) -> None:
    """``study.tell`` that leaves a trial someone else already ended as it is."""
    try:
        study.tell(trial, skip_if_finished=True, **tell)
    except RuntimeError as e:
        # GridSampler calls study.stop() once the grid is done, which only works inside
        # optimize(); the trial is stored before that (as the official sweeper also tolerates)
        if "Study.stop" not in str(e):
            raise


def quoted(value: str) -> str:
    """``value`` as a single-quoted value of Hydra's override grammar: quotes escaped, the
    backslashes before them doubled, ``${`` kept literal (a study named ``it's`` stays one)."""
    body = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
    body = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, body)
    return "'" + body.replace("${", "\\${") + "'"


def trial_overrides(number: int, study_name: str, url: str) -> tuple[str, ...]:
    """What a job needs to open its own trial (its config's ``search`` node), each value quoted."""
    return (
        f"++search.trial={number}",
        f"++search.study_name={quoted(study_name)}",
        f"++search.storage={quoted(url)}",
    )


def describe_best(study: optuna.Study) -> str:
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not done or len(study.directions) > 1:
        return "no completed trial yet" if not done else f"{len(done)} completed"
    best: FrozenTrial = study.best_trial
    return f"best so far #{best.number}: {best.value:.4g} with {best.params}"
