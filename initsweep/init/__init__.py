"""Initialization library: weight schemes, bias rules, per-layer rules, LSUV."""

# importing the scheme modules registers them
from initsweep.init import (  # noqa: F401
    bias,
    deep_transformers,
    lsuv,
    mup,
    residual_schemes,
    structured,
    variance,
    weights,
    zero,
)
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
from initsweep.init.residual import ResidualBranch, ResidualModel

__all__ = [
    "BiasContext",
    "InitModel",
    "ModelFacts",
    "ResidualBranch",
    "ResidualModel",
    "activation_gain",
    "initialize",
    "list_bias_rules",
    "list_schemes",
    "model_facts",
    "param_generator",
    "scheme_schema",
    "theoretical_moments",
]
