"""The search space of a sweep, checked before any trial runs.

Hydra's Optuna sweeper turns ``key=interval(a, b)``, ``tag(log, interval(a, b))``,
``choice(...)`` and ``range(...)`` into Optuna distributions; a mistake there would otherwise
surface as a traceback, or as every trial failing. Here it is one line naming the key.
"""

from __future__ import annotations

import difflib
from typing import Any

from hydra.errors import HydraException
from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution

from initsweep.errors import ConfigError, first_line, invalid

_ABSENT = object()


def check_key(key: str, config: DictConfig) -> None:
    """Raise if ``key`` is neither a config key nor a config group (``+key`` adds one)."""
    if key.startswith(("+", "~")) or key in _groups(config):
        return
    found = OmegaConf.select(config, key, default=_ABSENT, throw_on_resolution_failure=False)
    if found is not _ABSENT:
        return
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(config, parent, default=None) if parent else config
    keys = sorted(str(k) for k in node.keys()) if isinstance(node, DictConfig) else []
    close = difflib.get_close_matches(leaf, keys, n=1)
    hint = f"did you mean {'.'.join(filter(None, (parent, close[0])))}? " if close else ""
    where = parent or "the top level"
    raise invalid(
        "search space key", key, f"not in the config; {hint}{where} has {', '.join(keys)}"
    )


def _groups(config: DictConfig) -> set[str]:
    """Config groups, also those set to null in the defaults list (``experiment=…``)."""
    choices = OmegaConf.select(config, "hydra.runtime.choices", default=None)
    return set(choices.keys()) if isinstance(choices, DictConfig) else set()


def parse_space(
    arguments: list[str], config: DictConfig, allow_empty: bool = False
) -> tuple[dict[str, BaseDistribution], dict[str, Any], list[str]]:
    """``(distributions, fixed values, fixed overrides)`` of the sweep's ``key=value`` arguments.

    Raises :class:`ConfigError` for an unknown key, an interval with low > high, a log interval
    reaching 0 or below, or (unless ``allow_empty``) a space with nothing to search.
    """
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, Any] = {}
    fixed_overrides: list[str] = []
    for arg in arguments:
        key, _, value = arg.partition("=")
        try:
            s, f, o = create_params_from_overrides([arg])
        except (ValueError, AssertionError, NotImplementedError, HydraException) as e:
            reason = first_line(e)
            raise invalid(f"search space {key}", value, reason) from None
        for name in [*s, *f]:
            check_key(name, config)
        space.update(s)
        fixed.update(f)
        fixed_overrides += o
    for key in fixed:
        space.pop(key, None)
    if not space and not allow_empty:
        raise ConfigError(
            "the search space is empty: pick a preset (search=gain, scale, gain_scale, lr_gain) "
            "or give one on the command line, e.g. 'init.gain=tag(log, interval(0.1, 10))'"
        )
    return space, fixed, fixed_overrides
