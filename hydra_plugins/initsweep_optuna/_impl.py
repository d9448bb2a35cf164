"""The search loop: the official sweeper's, plus pruned trials, a checked space and result files.

What changes against ``hydra_optuna_sweeper._impl.OptunaSweeperImpl.sweep``:

- the search space is checked before any job (unknown key, inverted or non-positive log interval)
  and a mistake ends the sweep with one line and exit code 2, like a job's config error;
- the storage is resolved to an absolute URL (its folder created) and passed to every job with
  the trial number, so jobs on any launcher open the same study and report per-epoch values;
- a trial its job already told ``PRUNED`` is left as it is; a NaN/inf return (all seeds
  diverged) is a failed trial that does not count towards ``max_failure_rate``, which is the
  share of ``n_trials`` that may raise;
- ``multirun.yaml`` in the sweep dir, as Hydra's basic sweeper writes it (jobs name their W&B and
  TensorBoard runs by the keys it sweeps);
- after the search: ``optimization_results.yaml`` as before, plus the trials CSV, the plots and a
  table of the best trials (``initsweep.search.results``).
"""

from __future__ import annotations

import functools
import logging
import math
import sys
from pathlib import Path
from typing import Any, Literal, cast

import optuna
from hydra.core.utils import JobReturn
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl
from omegaconf import OmegaConf
from optuna.trial import Trial, TrialState

from hydra_plugins.initsweep_optuna.space import parse_space
from initsweep.errors import ConfigError
from initsweep.search.results import format_trials_table, write_study_outputs
from initsweep.search.storage import open_storage, resolve_storage
from initsweep.summary import direction as metric_direction

log = logging.getLogger(__name__)


class InitsweepOptunaSweeperImpl(OptunaSweeperImpl):
    def _get_directions(self) -> list[str]:
        if self.direction == "auto":
            return [metric_direction(self.config.objective)]
        return super()._get_directions()

    def sweep(self, arguments: list[str]) -> None:
        try:
            self._sweep(arguments)
        except ConfigError as e:
            # a user mistake in the search itself: one line, exit 2, as the job does
            print(f"initsweep: error: {e}", file=sys.stderr)
            sys.exit(2)

    def _sweep(self, arguments: list[str]) -> None:
        self._process_searchspace_config()
        # as Hydra's basic sweeper does: the jobs read the swept keys from it to name their runs
        Path(self.sweep_dir).mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, Path(self.sweep_dir) / "multirun.yaml")
        space, fixed, fixed_overrides = parse_space(
            [*self._parse_sweeper_params_config(), *arguments], self.config
        )
        if isinstance(self.sampler, functools.partial) and (
            self.sampler.func == optuna.samplers.GridSampler
        ):
            grid = {k: self._to_grid_sampler_choices(d) for k, d in space.items()}
            self.sampler = self.sampler(grid)
            self.n_trials = min(self.n_trials, math.prod(len(v) for v in grid.values()))

        directions = self._get_directions()
        url = resolve_storage(self.storage)
        if url is not None and self.study_name is None:
            raise ConfigError(
                "hydra.sweeper.study_name=None is invalid: name the study (search.study_name)"
            )
        storage = open_storage(url)
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
        study.set_user_attr("objective", self.config.objective)
        before = len(study.trials)
        log.info(f"Study {study.study_name!r} in {url}: {before} trials so far")
        log.info(
            f"Search space: {space}; direction {directions}; sampler {type(self.sampler).__name__}"
        )
        if url is None:
            log.warning("storage=null: an in-memory study, nothing persists and nothing is pruned")

        failures = launched = 0
        self.job_idx = max(self.job_idx, before)  # never reuse a job dir of this study
        while launched < self.n_trials:
            batch = min(self.n_jobs, self.n_trials - launched)
            trials = [study.ask() for _ in range(batch)]
            overrides = self._configure_trials(trials, space, fixed, fixed_overrides)
            if url is not None:  # jobs open the study themselves to report and prune
                overrides = [
                    (*o, *trial_overrides(t.number, study.study_name, url))
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
            returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            self.job_idx += len(returns)
            for trial, ret in zip(trials, returns):
                failures += self._tell(study, trial, ret)
            launched += batch
            log.info(f"{launched}/{self.n_trials} trials done; {describe_best(study)}")
            if failures > self.max_failure_rate * self.n_trials:
                break

        self._write_results(study, directions)
        written = write_study_outputs(self.sweep_dir, url or storage, study.study_name)
        print(format_trials_table(study, title=f"study {study.study_name!r}: best trials"))
        log.info(f"Search results: {', '.join(str(p) for p in written)}")
        if failures > self.max_failure_rate * self.n_trials:
            # the jobs' own errors are in the log above; a sweeper traceback would add nothing
            print(
                f"initsweep: error: {failures} of {launched} trials raised, more than "
                f"hydra.sweeper.max_failure_rate={self.max_failure_rate} of {self.n_trials}",
                file=sys.stderr,
            )
            sys.exit(1)

    @staticmethod
    def _tell(study: optuna.Study, trial: Trial, ret: JobReturn) -> int:
        """Record one job's outcome; return 1 if the job raised (counts as a failure)."""
        try:
            value = float(ret.return_value)  # re-raises the job's exception
        except Exception as e:
            log.warning(f"Trial {trial.number} failed: {type(e).__name__}: {e}")
            finish(study, trial, state=TrialState.FAIL)
            return 1
        if not math.isfinite(value):
            log.warning(f"Trial {trial.number} returned {value} (its seeds diverged): failed")
            finish(study, trial, state=TrialState.FAIL)
            return 0
        # a pruned trial was already told PRUNED by its job: leave it so
        finish(study, trial, values=value)
        return 0

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
        OmegaConf.save(OmegaConf.create(results), f"{self.sweep_dir}/optimization_results.yaml")


def finish(study: optuna.Study, trial: Trial, **tell: Any) -> None:
    """``study.tell`` that leaves a trial its job told ``PRUNED`` as it is."""
    pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    if any(t.number == trial.number for t in pruned):
        log.info(f"Trial {trial.number} was pruned by its job")
        return
    try:
        study.tell(trial, skip_if_finished=True, **tell)
    except RuntimeError as e:
        # GridSampler calls study.stop() once the grid is done, which only works inside
        # optimize(); the trial is stored before that (as the official sweeper also tolerates)
        if "Study.stop" not in str(e):
            raise


def trial_overrides(number: int, study_name: str, url: str) -> tuple[str, ...]:
    """What a job needs to open its own trial; ``++`` adds the keys without the ``search`` preset."""
    return (
        f"++search.trial={number}",
        f"++search.study_name='{study_name}'",
        f"++search.storage='{url}'",
    )


def describe_best(study: optuna.Study) -> str:
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not done or len(study.directions) > 1:
        return "no completed trial yet"
    best = study.best_trial
    return f"best so far #{best.number}: {best.value:.4g} with {best.params}"
