"""``hydra/sweeper=initsweep_optuna``: the official Optuna sweeper's config, two defaults changed
and three keys added."""

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf


@dataclass
class InitsweepOptunaSweeperConf(OptunaSweeperConf):
    """Every key of ``hydra/sweeper=optuna`` (sampler, storage, study_name, n_trials, n_jobs,
    max_failure_rate, params, custom_search_space), with:

    - ``direction: auto``: minimize or maximize as the job's ``objective`` asks (losses down,
      accuracy/AUC up; an app without ``objective`` is minimized, the official default);
      ``minimize``/``maximize`` and lists of them still work.
    - ``max_failure_rate``: the share of ``n_trials`` that may *raise* before the sweep stops
      (the official sweeper counts per batch, so with ``n_jobs=1`` one error stopped it).
      Trials that return no usable value are recorded failed without counting, and so are the
      trials of a batch the launcher lost (a killed worker): they are re-queued.
    - ``n_trials: 0`` runs nothing: the study's results are written and printed again.
    - ``heartbeat_interval`` / ``grace_period`` (seconds): an RDB study's trials carry a heartbeat
      while their jobs run; one older than the grace period belongs to a search that died, and
      the next search on the study fails it and re-queues it, up to ``max_retry`` times (also a
      trial whose worker died under a running search).
    """

    _target_: str = "hydra_plugins.initsweep_optuna.initsweep_sweeper.InitsweepOptunaSweeper"
    direction: Any = "auto"
    heartbeat_interval: int = 30
    grace_period: int = 120  # four missed heartbeats (a SQLite lock may hold one up)
    max_retry: int = 1


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="initsweep_optuna",
    node=InitsweepOptunaSweeperConf,
    provider="initsweep",
)
