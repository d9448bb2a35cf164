"""Optuna search over init gain and scale (with ``hydra/sweeper=initsweep_optuna``).

- :mod:`~initsweep.search.pruning`: a trial's job reports each epoch, stops when pruned, and
  records its per-seed values;
- :mod:`~initsweep.search.pruner`: the study's pruner, its ``auto`` warm-up and startup trials;
- :mod:`~initsweep.search.outcomes`: how many trials were pruned, after which epochs;
- :mod:`~initsweep.search.logs`: Optuna's log lines to the log files, not the terminal;
- :mod:`~initsweep.search.seeds`: per-seed values of a trial, and which of the best trials
  cannot be told apart across seeds;
- :mod:`~initsweep.search.results`: the trials CSV and plots after a search
  (``write_study_outputs``; imported from there, as it pulls in matplotlib and Optuna, which a
  plain job does not need);
- :mod:`~initsweep.search.storage`: where a study lives (the sweeper checks the search space
  itself: ``hydra_plugins/initsweep_optuna/space.py``).
"""

from initsweep.search.pruning import (
    JobTrial,
    Pruned,
    PruningHook,
    Trial,
    open_job_trial,
)

__all__ = ["JobTrial", "Pruned", "PruningHook", "Trial", "open_job_trial"]
