"""Initialization library: weight schemes, bias rules, per-layer rules, LSUV."""

# importing the scheme modules registers them
from initsweep.init import bias, lsuv, mup, structured, variance, weights  # noqa: F401
from initsweep.init.apply import initialize
from initsweep.init.bias import BiasContext
from initsweep.init.fans import activation_gain
from initsweep.init.generators import param_generator
from initsweep.init.model import InitModel, ModelFacts, model_facts
from initsweep.init.registry import (
    list_bias_rules,
    list_schemes,
    scheme_schema,
    theoretical_moments,
)

__all__ = [
    "BiasContext",
    "InitModel",
    "ModelFacts",
    "activation_gain",
    "initialize",
    "list_bias_rules",
    "list_schemes",
    "model_facts",
    "param_generator",
    "scheme_schema",
    "theoretical_moments",
]
