"""Initialization library: weight schemes, bias rules, per-layer rules."""

from initsweep.init import bias, weights  # noqa: F401  (registers the schemes and rules)
from initsweep.init.apply import initialize, param_generator
from initsweep.init.bias import BiasContext
from initsweep.init.registry import list_bias_rules, list_schemes, scheme_schema

__all__ = [
    "BiasContext",
    "initialize",
    "list_bias_rules",
    "list_schemes",
    "param_generator",
    "scheme_schema",
]
