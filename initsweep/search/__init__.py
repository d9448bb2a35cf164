"""Optuna search over init gain and scale (with ``hydra/sweeper=initsweep_optuna``).

- :mod:`~initsweep.search.pruning`: a trial's job reports each epoch and stops when pruned;
- :mod:`~initsweep.search.results`: the trials CSV and plots after a search, and how to find them
  (``write_study_outputs``, ``find_study_outputs``; imported from there, as they pull in
  matplotlib and Optuna, which a plain job does not need);
- :mod:`~initsweep.search.space` and :mod:`~initsweep.search.storage`: the sweeper's checks.
"""

from initsweep.search.pruning import Pruned, PruningHook, search_fields, trial_hooks

__all__ = ["Pruned", "PruningHook", "search_fields", "trial_hooks"]
