"""``hydra/sweeper=initsweep_optuna``: the official Optuna sweeper's config, two defaults changed."""

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf


@dataclass
class InitsweepOptunaSweeperConf(OptunaSweeperConf):
    """Every key of ``hydra/sweeper=optuna`` (sampler, storage, study_name, n_trials, n_jobs,
    max_failure_rate, params, custom_search_space), with:

    - ``direction: auto``: minimize or maximize as the job's ``objective`` asks (losses down,
      accuracy/AUC up); ``minimize``/``maximize`` still work.
    - ``max_failure_rate``: the share of ``n_trials`` that may *raise* before the sweep stops
      (the official sweeper counts per batch, so with ``n_jobs=1`` one error stopped it).
      Trials whose seeds all diverged return NaN and are recorded failed without counting.
    """

    _target_: str = "hydra_plugins.initsweep_optuna.initsweep_sweeper.InitsweepOptunaSweeper"
    direction: Any = "auto"


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="initsweep_optuna",
    node=InitsweepOptunaSweeperConf,
    provider="initsweep",
)
