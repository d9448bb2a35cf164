"""Hydra's Optuna sweeper with pruning, persistent studies and result files (``initsweep_optuna``).

``hydra_plugins`` is a namespace package (no ``__init__.py``), so Hydra finds this plugin beside
the official ones; ``pyproject.toml`` also registers it as a ``hydra.plugins`` entry point, which
Hydra 1.4 reads when an editable install hides the namespace from its scanner.
"""
