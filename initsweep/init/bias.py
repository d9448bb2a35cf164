"""Bias rules for the output layer: the best constant predictor under the job's loss.

With the output weights at zero the network predicts its output bias b for every input, so a rule
that sets b to the best constant makes the loss at init the Bayes-optimal constant loss
(Karpathy, "A Recipe for Training Neural Networks", 2019: "verify loss @ init", "init well"):

================  =======================================  ===================================
rule              b                                        loss at init (output weights 0)
================  =======================================  ===================================
zeros             0                                        ln C (softmax), ln 2 (sigmoid)
prior             log π_c (softmax), log(p/(1-p)) (sigm.)  H(π), H_b(p)
mean              mean(y)                                  Var(y) under MSE (ddof 0)
median            median(y)                                mean |y − median(y)| under MAE
huber             root of Σ clip(y − b, −δ, δ) = 0          mean Huber_δ(y − b*)
gaussian          [mean(y), log Var(y)] (2-unit head)      ½(log Var(y) + 1), Gaussian NLL
================  =======================================  ===================================

Hidden-layer biases (``bias.hidden``) and the LSTM forget gate are set by ``apply.py``.
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
    params: dict = field(default_factory=dict)  # the bias config's extra keys (value, ...)
    huber_delta: float = 1.0  # trainer.huber_delta: the δ of the huber rule
    fan_in: int | None = None  # the output layer's fan-in (for the pytorch_default rule)
    generator: torch.Generator | None = None  # for random rules, seeded from (seed, name)


@register_bias_rule
def zeros(bias: Tensor, ctx: BiasContext) -> Tensor:
    """b = 0: a softmax head then predicts the uniform distribution (loss ln C)."""
    return torch.zeros_like(bias)


@register_bias_rule
def constant(bias: Tensor, ctx: BiasContext) -> Tensor:
    """b = ``bias.value`` for every unit."""
    return torch.full_like(bias, float(ctx.params.get("value", 0.0)))


@register_bias_rule
def pytorch_default(bias: Tensor, ctx: BiasContext) -> Tensor:
    r"""What ``nn.Linear.reset_parameters`` does: :math:`\mathcal{U}(\pm 1/\sqrt{n_{in}})` (0 if n_in = 0)."""
    bound = 1.0 / math.sqrt(ctx.fan_in) if ctx.fan_in else 0.0
    out = torch.empty(bias.shape, dtype=bias.dtype)
    return out.uniform_(-bound, bound, generator=ctx.generator)


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


def _regression_targets(rule: str, ctx: BiasContext) -> Tensor:
    if ctx.task != "regression" or ctx.targets is None or len(ctx.targets) == 0:
        raise ConfigError(
            f"bias.output={rule!r} needs a regression task with targets, got task={ctx.task!r}"
        )
    return ctx.targets.double().reshape(-1)


@register_bias_rule
def mean(bias: Tensor, ctx: BiasContext) -> Tensor:
    """b = mean(y): the MSE-optimal constant; loss at init Var(y) (population, ddof 0)."""
    return torch.full_like(bias, float(_regression_targets("mean", ctx).mean()))


@register_bias_rule
def median(bias: Tensor, ctx: BiasContext) -> Tensor:
    """b = median(y): the MAE-optimal constant; loss at init mean |y − median(y)|."""
    return torch.full_like(bias, float(_regression_targets("median", ctx).median()))


def huber_optimum(y: Tensor, delta: float) -> float:
    r"""The exact Huber-optimal constant: the root of :math:`\sum_i \mathrm{clip}(y_i - b, -\delta, \delta) = 0`.

    The sum is continuous and non-increasing in b, positive at min(y) and negative at max(y), so
    bisection in float64 converges to the root (between the median, δ → 0, and the mean, δ → ∞).
    ``SmoothL1Loss(beta)`` = Huber(δ = beta)/beta has the same optimum.
    """
    y = y.double()
    lo, hi = float(y.min()), float(y.max())
    for _ in range(200):  # halves the bracket each time: far beyond float64 resolution
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if float((y - mid).clamp(-delta, delta).sum()) > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@register_bias_rule
def huber(bias: Tensor, ctx: BiasContext) -> Tensor:
    """b = the exact Huber optimum for δ = ``trainer.huber_delta`` (see :func:`huber_optimum`)."""
    if not ctx.huber_delta > 0:
        raise ConfigError(f"trainer.huber_delta={ctx.huber_delta!r} is invalid: must be > 0")
    return torch.full_like(bias, huber_optimum(_regression_targets("huber", ctx), ctx.huber_delta))


@register_bias_rule
def gaussian(bias: Tensor, ctx: BiasContext) -> Tensor:
    r"""A Gaussian head (mean, log-variance): :math:`b = [\bar y, \log \mathrm{Var}(y)]`.

    For a model whose output layer has 2 units read as μ and log σ² (the seeds' "precision/variance
    parameter"). With the output weights at 0 the Gaussian NLL at init is
    :math:`\tfrac12(\log \mathrm{Var}(y) + 1)` (``GaussianNLLLoss(full=False)``; full adds ½ log 2π).
    """
    y = _regression_targets("gaussian", ctx)
    if bias.numel() != 2:
        raise ConfigError(
            f"bias.output='gaussian' needs a 2-unit output layer (mean, log-variance); "
            f"this one has {bias.numel()} (use a model with out_features=2)"
        )
    var = float(y.var(unbiased=False))
    if var <= 0:
        raise ConfigError("bias.output='gaussian': the targets are constant (Var(y) = 0)")
    return torch.tensor([float(y.mean()), math.log(var)], dtype=bias.dtype)


def entropy(p: Tensor) -> float:
    """Shannon entropy in nats of a probability vector (the loss at init of the prior bias)."""
    p = p.double()
    return float(-(p[p > 0] * p[p > 0].log()).sum())


def binary_entropy(p: float) -> float:
    return 0.0 if p in (0.0, 1.0) else -p * math.log(p) - (1 - p) * math.log(1 - p)
