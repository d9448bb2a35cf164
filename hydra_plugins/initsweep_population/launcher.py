"""The population launcher: Hydra hands it a batch of jobs (a multirun, or ``n_jobs`` trials of
the Optuna sweeper); it trains the jobs that may share a population
(:func:`initsweep.job.group.stack_key`) as one: in this process, or (given Hydra's submitit
launcher's settings, the ``population_slurm`` preset) each group as one SLURM task, so 60 small
jobs are a few tasks.

It keeps Hydra's launcher contract: every job goes through Hydra's own ``run_job`` with the app's
task function, so callbacks, each job's log file and working dir, return values and failures are
as under the basic launcher. For initsweep's task functions (:func:`initsweep.job.runs_jobs`)
that takes three steps (:mod:`initsweep.job.batch`): collect every job's spec by calling its task
function out of sight, train the groups, then run each job through ``run_job`` again, where the
task function gets the job's result (or error) and its log lines. Any other task function runs
job by job, as the basic launcher runs it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra._internal.callbacks import Callbacks
from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.config_store import ConfigStore
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    env_override,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)
RUNS_JOBS = "initsweep_runs_jobs"  # initsweep.job.RUNS_JOBS, read without importing torch


@dataclass
class PopulationLauncherConf:
    """``hydra/launcher=population``; ``max_copies`` caps a group's copies (its memory)."""

    _target_: str = "hydra_plugins.initsweep_population.launcher.PopulationLauncher"
    max_copies: int | None = None


ConfigStore.instance().store(
    group="hydra/launcher", name="population", node=PopulationLauncherConf, provider="initsweep"
)


class GroupTask:
    """What a SLURM task of the population launcher runs: group ``hydra.job.num`` of its batch,
    returning each job's result and log records.

    It travels to the node inside submitit's own job pickle (the channel Hydra's submitit
    launcher uses for every job), never through a config value.
    """

    def __init__(self, groups: list[list], until_init: list[bool]) -> None:
        self.groups, self.until_init = groups, until_init

    def __call__(self, cfg: DictConfig) -> tuple[list, list[list]]:
        from hydra.core.hydra_config import HydraConfig

        from initsweep.job.batch import run_kept

        k = HydraConfig.get().job.num
        return run_kept(self.groups[k], self.until_init[k])


class PopulationLauncher(Launcher):
    """``max_copies`` caps a group's copies; ``submitit`` (the settings of Hydra's submitit
    SLURM launcher, as the ``population_slurm`` preset gives them) runs each group as a task."""

    def __init__(self, max_copies: int | None = None, **submitit) -> None:
        self.max_copies, self.submitit = max_copies, submitit
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.task_function = task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        if not getattr(self.task_function, RUNS_JOBS, False) or not job_overrides:
            return self._job_by_job(job_overrides, initial_job_idx)
        from initsweep.job.batch import collecting, run_kept

        setup_globals()
        configure_log(
            self.config.hydra.hydra_logging,
            self.config.hydra.verbose,
            execution_whitelist=self.hydra_context.execution_whitelist,
        )
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"Launching {len(job_overrides)} jobs as populations")
        configs = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            configs.append(self._job_config(idx, overrides))
        unseen = HydraContext(  # collecting is no job run a callback should see
            self.hydra_context.config_loader, Callbacks(), self.hydra_context.execution_whitelist
        )
        with collecting() as batch:
            for config in configs:  # 1. each job's spec
                self._run_job(config, unseen, configure_logging=False)
            groups = batch.groups(self.max_copies)  # 2. each group as one population
            self._job_console(configs[0])
            with env_override(self._env(configs[0])):
                trained = (
                    self._on_slurm(batch, groups)
                    if self.submitit
                    else [run_kept(batch.specs(g), batch.until_init(g)) for g in groups]
                )
            for group, (results, records) in zip(groups, trained):
                batch.done(group, results, records)
            batch.completing = True  # 3. each job through Hydra, with its result
            return [self._run_job(config, self.hydra_context) for config in configs]

    def _job_config(self, idx: int, overrides: Sequence[str]) -> DictConfig:
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(config):
            config.hydra.job.id = str(idx)
            config.hydra.job.num = idx
        return config

    def _run_job(self, config: DictConfig, context: HydraContext, **kw) -> JobReturn:
        return run_job(
            hydra_context=context,
            task_function=self.task_function,
            config=config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
            **kw,
        )

    def _job_console(self, config: DictConfig) -> None:
        """While the groups train, the jobs' own logging (``hydra.job_logging``) without its
        files: Hydra opens each job's file when it runs the job, and its lines go there then."""
        conf = OmegaConf.to_container(config.hydra.job_logging, resolve=True) or {}
        files = {name for name, h in (conf.get("handlers") or {}).items() if "filename" in h}
        for node in [conf.get("root") or {}, *(conf.get("loggers") or {}).values()]:
            node["handlers"] = [h for h in node.get("handlers", []) if h not in files]
        for name in files:
            del conf["handlers"][name]
        configure_log(
            OmegaConf.create(conf) if conf else None,
            config.hydra.verbose,
            execution_whitelist=self.hydra_context.execution_whitelist,
        )

    @staticmethod
    def _env(config: DictConfig) -> dict[str, str]:
        """The jobs' ``hydra.job.env_set`` (Hydra's config, the same for every job of a sweep),
        set while the groups train as ``run_job`` sets it while a job runs."""
        return OmegaConf.to_container(config.hydra.job.env_set, resolve=True)

    def _job_by_job(self, job_overrides, initial_job_idx: int) -> Sequence[JobReturn]:
        name = getattr(self.task_function, "__qualname__", repr(self.task_function))
        log.info(
            f"hydra/launcher=population: {name} is not an initsweep task function "
            "(initsweep.job.runs_jobs); its jobs run one by one, as under the basic launcher"
        )
        basic = BasicLauncher()
        basic.setup(
            hydra_context=self.hydra_context, task_function=self.task_function, config=self.config
        )
        return basic.launch(job_overrides, initial_job_idx)

    def _on_slurm(self, batch, groups: list[list[int]]) -> list[tuple]:
        """Each group as one task of a SLURM array (Hydra's submitit launcher); its Hydra job
        dir is ``<sweep dir>/.population/task-<k>``, beside the group's checkpoint. A task that
        failed as a whole fails each of its jobs with its error."""
        from hydra_plugins.initsweep_slurm.launcher import SlurmLauncher  # reads pending reasons

        tasks = SlurmLauncher(**self.submitit)
        task = GroupTask([batch.specs(g) for g in groups], [batch.until_init(g) for g in groups])
        tasks.setup(hydra_context=self.hydra_context, task_function=task, config=self.config)
        overrides = [
            [*batch.specs(g)[0].overrides, f"hydra.sweep.subdir=.population/task-{k}"]
            for k, g in enumerate(groups)
        ]
        done = tasks.launch(overrides, initial_job_idx=0)
        return [
            d.return_value
            if d.status == JobStatus.COMPLETED
            else ([d._return_value] * len(g), [[] for _ in g])
            for d, g in zip(done, groups)
        ]
