"""The population launcher: Hydra hands it a batch of jobs (a multirun, or ``n_jobs`` trials of
the Optuna sweeper); it groups them by :func:`initsweep.job.group.stack_key` and trains each
group as one population: in this process, or (given Hydra's submitit launcher's settings, the
``population_slurm`` preset) each group as one SLURM job, so 60 small jobs are a few tasks.

Each job still goes through Hydra's own ``run_job`` (its output dir, ``.hydra/`` files and
callbacks) to have its config read into a :class:`~initsweep.job.JobSpec`; then the groups
train and every job's objective (or error) goes back to Hydra or Optuna in the batch's order.
It runs initsweep's jobs only: the app's task function is not called.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)


@dataclass
class PopulationLauncherConf:
    """``hydra/launcher=population``; ``max_copies`` caps a group's copies (its memory)."""

    _target_: str = "hydra_plugins.initsweep_population.launcher.PopulationLauncher"
    max_copies: int | None = None


ConfigStore.instance().store(
    group="hydra/launcher", name="population", node=PopulationLauncherConf, provider="initsweep"
)


def _spec(cfg: DictConfig):
    from initsweep.job import job_spec  # torch: imported when a job runs, not at plugin scan

    return job_spec(cfg)


class GroupTask:
    """What a SLURM task of the population launcher runs: group ``hydra.job.num`` of its batch.

    It travels to the node inside submitit's own job pickle (the channel Hydra's submitit
    launcher uses for every job), never through a config value.
    """

    def __init__(self, groups: list[list]) -> None:
        self.groups = groups

    def __call__(self, cfg: DictConfig) -> list:
        from hydra.core.hydra_config import HydraConfig

        from initsweep.job.group import run_group

        return run_group(self.groups[HydraConfig.get().job.num])


class PopulationLauncher(Launcher):
    """``max_copies`` caps a group's copies; ``submitit`` (the settings of Hydra's submitit
    SLURM launcher, as the ``population_slurm`` preset gives them) runs each group as a task."""

    def __init__(self, max_copies: int | None = None, **submitit) -> None:
        self.max_copies, self.submitit = max_copies, submitit
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context

    def _configure_log(self) -> None:
        configure_log(
            self.config.hydra.hydra_logging,
            self.config.hydra.verbose,
            execution_whitelist=self.hydra_context.execution_whitelist,
        )

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from initsweep.job.group import group_jobs, run_group

        self._configure_log()
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"Launching {len(job_overrides)} jobs as populations")
        returns: list[JobReturn] = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            sweep_config = self.hydra_context.config_loader.load_sweep_config(
                self.config, list(overrides)
            )
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = str(idx)
                sweep_config.hydra.job.num = idx
            returns.append(
                run_job(
                    hydra_context=self.hydra_context,
                    task_function=_spec,
                    config=sweep_config,
                    job_dir_key="hydra.sweep.dir",
                    job_subdir_key="hydra.sweep.subdir",
                )
            )
        self._configure_log()
        ready = [r for r in returns if r.status == JobStatus.COMPLETED]
        specs = [r.return_value for r in ready]
        groups = group_jobs(specs, self.max_copies)
        results = (
            self._on_slurm(groups, specs, returns)
            if self.submitit
            else [run_group([specs[i] for i in g]) for g in groups]
        )
        for group, values in zip(groups, results):
            for i, value in zip(group, values):
                ret = ready[i]
                if isinstance(value, BaseException):
                    ret.return_value, ret.status = value, JobStatus.FAILED
                else:
                    ret.return_value = value
        return returns

    def _on_slurm(self, groups, specs, returns) -> list[list]:
        """Each group as one task of a SLURM array (Hydra's submitit launcher); its Hydra job
        dir is ``<sweep dir>/.population/task-<k>``, beside the group's checkpoint."""
        from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

        tasks = SlurmLauncher(**self.submitit)
        task = GroupTask([[specs[i] for i in g] for g in groups])
        tasks.setup(hydra_context=self.hydra_context, task_function=task, config=self.config)
        ready = [r for r in returns if r.status == JobStatus.COMPLETED]
        overrides = [
            [*ready[g[0]].overrides, f"hydra.sweep.subdir=.population/task-{k}"]
            for k, g in enumerate(groups)
        ]
        done = tasks.launch(overrides, initial_job_idx=0)
        return [
            d.return_value if d.status == JobStatus.COMPLETED else [d._return_value] * len(g)
            for d, g in zip(done, groups)
        ]
