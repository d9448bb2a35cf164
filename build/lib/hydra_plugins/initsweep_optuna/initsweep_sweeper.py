"""The sweeper class Hydra instantiates. Kept light: Hydra imports every plugin module at start,
so Optuna and torch are imported only when a search actually runs (as the official plugin does).
"""

from typing import Any

from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
from omegaconf import DictConfig

from . import config as config  # registers hydra/sweeper=initsweep_optuna


class InitsweepOptunaSweeper(OptunaSweeper):
    """``OptunaSweeper`` whose trials can be pruned, on any launcher.

    Each job gets ``++search.trial=<number>``, ``++search.study_name`` and ``++search.storage``
    (an absolute URL), opens the same study, reports its objective after every epoch and stops
    when the study's pruner says so (``initsweep.search.pruning``).
    """

    def __init__(
        self,
        sampler: Any,
        direction: Any,
        storage: Any | None,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        custom_search_space: str | None,
        params: DictConfig | None,
        heartbeat_interval: int = 30,
        grace_period: int = 120,
        max_retry: int = 1,
    ) -> None:
        from ._impl import InitsweepOptunaSweeperImpl

        sampler = instantiate(
            sampler,
            _execution_whitelist_=(
                "hydra_plugins.hydra_optuna_sweeper.*",
                "optuna.samplers.*",
            ),
        )
        self.sweeper = InitsweepOptunaSweeperImpl(
            sampler,
            direction,
            storage,
            study_name,
            n_trials,
            n_jobs,
            max_failure_rate,
            custom_search_space,
            params,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            max_retry=max_retry,
        )
