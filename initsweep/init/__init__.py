"""Initialization library: weight schemes, bias rules, per-layer rules, LSUV."""

# importing the scheme modules registers them
from initsweep.init import bias, lsuv, structured, variance, weights  # noqa: F401
from initsweep.init.apply import activation_gain, initialize, param_generator
from initsweep.init.bias import BiasContext
from initsweep.init.registry import (
    list_bias_rules,
    list_schemes,
    scheme_schema,
    theoretical_moments,
)

__all__ = [
    "BiasContext",
    "activation_gain",
    "initialize",
    "list_bias_rules",
    "list_schemes",
    "param_generator",
    "scheme_schema",
    "theoretical_moments",
]
