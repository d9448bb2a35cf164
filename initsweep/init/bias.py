"""Bias rules for the output layer (and constants for hidden layers).

With the output weights at zero the network predicts its output bias for every input, so a rule
that sets the bias to the best constant predictor makes the loss at init equal the loss of that
constant (Karpathy, "A Recipe for Training Neural Networks", 2019: "init well").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from initsweep.errors import ConfigError
from initsweep.init.registry import register_bias_rule


@dataclass
class BiasContext:
    """What a bias rule may look at: the task and statistics of the training split."""

    task: str  # multiclass | binary | regression
    class_prior: Tensor | None = None  # [C] class frequencies (multiclass) or [1] positive rate
    targets: Tensor | None = None  # regression targets of the training split
    loss: str = "auto"
    params: dict = field(default_factory=dict)  # the bias config's extra keys (value, delta, ...)


@register_bias_rule
def zeros(bias: Tensor, ctx: BiasContext) -> Tensor:
    """b = 0: a softmax head then predicts the uniform distribution (loss ln C)."""
    return torch.zeros_like(bias)


@register_bias_rule
def constant(bias: Tensor, ctx: BiasContext) -> Tensor:
    """b = ``bias.value`` for every unit."""
    return torch.full_like(bias, float(ctx.params.get("value", 0.0)))


@register_bias_rule
def prior(bias: Tensor, ctx: BiasContext) -> Tensor:
    r"""Log class prior: softmax :math:`b_c = \log \pi_c`; sigmoid :math:`b = \log(p/(1-p))`.

    Loss at init (output weights 0) is then the prior's entropy :math:`H(\pi)` instead of
    :math:`\ln C` (Lin et al. 2017, §3.3 for the sigmoid case). A class with zero training samples
    has no finite log prior: that is an error, not a silent floor.
    """
    if ctx.task not in ("multiclass", "binary") or ctx.class_prior is None:
        raise ConfigError(
            f"bias.output='prior' needs a classification task, got task={ctx.task!r}"
        )
    p = ctx.class_prior.double()
    if (p <= 0).any() or (ctx.task == "binary" and (p >= 1).any()):
        raise ConfigError(
            f"bias.output='prior': a class has no training samples (prior={p.tolist()}); "
            "log 0 is undefined, use bias.output=zeros or change the imbalance"
        )
    b = torch.log(p) if ctx.task == "multiclass" else torch.log(p / (1 - p))
    return b.to(bias.dtype).reshape(bias.shape)


def entropy(p: Tensor) -> float:
    """Shannon entropy in nats of a probability vector (the loss at init of the prior bias)."""
    p = p.double()
    return float(-(p[p > 0] * p[p > 0].log()).sum())


def binary_entropy(p: float) -> float:
    return 0.0 if p in (0.0, 1.0) else -p * math.log(p) - (1 - p) * math.log(1 - p)
