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

Hidden-layer biases follow a ``bias.hidden`` rule from the same registry (``zeros``,
``constant``, ``default``: PyTorch's U(±1/√n_in)); a recurrent layer's two bias vectors are
counted once, and an LSTM's forget gate can be set on its own (``bias.forget_gate``).
:func:`apply_biases` does all of it for one model copy.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from initsweep.errors import ConfigError
from initsweep.init.generators import param_generator
from initsweep.init.registry import get_bias_rule, register_bias_rule


@dataclass
class BiasContext:
    """What a bias rule may look at: the task and statistics of the training split."""

    task: str  # multiclass | binary | regression | tokens
    # [C] class frequencies (multiclass; tokens: of the scored tokens) or [1] positive rate
    class_prior: Tensor | None = None
    targets: Tensor | None = None  # regression targets of the training split
    loss: str = "auto"
    params: dict = field(default_factory=dict)  # the bias config's extra keys (value, ...)
    huber_delta: float = 1.0  # trainer.huber_delta: the δ of the huber rule
    fan_in: int | None = None  # the layer's fan-in (the pytorch_default and default rules)
    generator: torch.Generator | None = None  # for random rules, seeded from (seed, name)
    # a recurrent layer adds two bias vectors: "ih" or "hh" says which one a hidden rule fills
    part: str | None = None


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
    if ctx.task not in ("multiclass", "binary", "tokens") or ctx.class_prior is None:
        raise ConfigError(
            f"bias.output='prior' needs a classification task, got task={ctx.task!r}"
        )
    p = ctx.class_prior.double()
    if (p <= 0).any() or (ctx.task == "binary" and (p >= 1).any()):
        raise ConfigError(
            f"bias.output='prior': a class has no training samples (prior={p.tolist()}); "
            "log 0 is undefined, use bias.output=zeros or change the imbalance"
        )
    b = torch.log(p / (1 - p)) if ctx.task == "binary" else torch.log(p)
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


def target_median(y: Tensor) -> float:
    """The conventional median (``numpy.median``): for an even count, the mean of the two middle
    values, not torch's lower one. Any point between them minimises the MAE, but the midpoint is
    what "the median" means elsewhere (a report, another library), and under MSE or Huber the
    lower one shifts the loss at init (diabetes' training split: 139.5, not 139.0)."""
    return float(np.median(y.detach().double().cpu().numpy()))


@register_bias_rule
def median(bias: Tensor, ctx: BiasContext) -> Tensor:
    """b = median(y) (:func:`target_median`): the MAE-optimal constant; loss at init
    mean |y − median(y)|."""
    return torch.full_like(bias, target_median(_regression_targets("median", ctx)))


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


def best_constant_losses(y: Tensor, huber_delta: float = 1.0) -> dict[str, float]:
    """What each regression rule's bias makes the loss at init (output weights 0): the loss of
    the best constant under MSE (Var(y), ddof 0, at the mean), MAE (mean |y - median(y)|, at
    the median) and Huber_δ (at :func:`huber_optimum`)."""
    y = y.double().reshape(-1)
    r = y - huber_optimum(y, huber_delta)
    huber = torch.where(
        r.abs() <= huber_delta, 0.5 * r**2, huber_delta * (r.abs() - 0.5 * huber_delta)
    )
    return {
        "mse": float(y.var(correction=0)),
        "mae": float((y - target_median(y)).abs().mean()),
        "huber": float(huber.mean()),
    }


def entropy(p: Tensor) -> float:
    """Shannon entropy in nats of a probability vector (the loss at init of the prior bias)."""
    p = p.double()
    return float(-(p[p > 0] * p[p > 0].log()).sum())


def binary_entropy(p: float) -> float:
    return 0.0 if p in (0.0, 1.0) else -p * math.log(p) - (1 - p) * math.log(1 - p)


# --- hidden bias rules (bias.hidden)


@register_bias_rule(name="zeros", kind="hidden")
def hidden_zeros(bias: Tensor, ctx: BiasContext) -> Tensor:
    """b = 0 (both vectors of a recurrent layer)."""
    return torch.zeros_like(bias)


@register_bias_rule(name="constant", kind="hidden")
def hidden_constant(bias: Tensor, ctx: BiasContext) -> Tensor:
    """b = ``bias.hidden_value`` (e.g. 0.1 for ReLU units); a recurrent layer's ``bias_ih`` gets
    it and its ``bias_hh`` 0, so the cell's effective bias is the value, not twice it."""
    value = 0.0 if ctx.part == "hh" else float(ctx.params.get("hidden_value", 0.0))
    return torch.full_like(bias, value)


@register_bias_rule(name="default", kind="hidden")
def hidden_default(bias: Tensor, ctx: BiasContext) -> Tensor:
    r"""PyTorch's ``reset_parameters`` bias: :math:`\mathcal{U}(\pm 1/\sqrt{n_{in}})`, both vectors
    of a recurrent layer :math:`\mathcal{U}(\pm 1/\sqrt{H})` (0 if the fan is 0)."""
    bound = 1.0 / math.sqrt(ctx.fan_in) if ctx.fan_in else 0.0
    out = torch.empty(bias.shape, dtype=bias.dtype)
    return out.uniform_(-bound, bound, generator=ctx.generator)


# --- applying the rules to a model

# (bias, weight) attribute pairs: a layer's bias, and an attention layer's fused q/k/v bias
_BIASED_WEIGHTS = (("bias", "weight"), ("in_proj_bias", "in_proj_weight"))


@torch.no_grad()
def apply_biases(
    model: nn.Module,
    bias: dict,
    ctx: BiasContext,
    seed: int,
    assignment: dict[str, dict[str, Any]],
    output_layer: str | None,
) -> None:
    """Set every bias of ``model``: ``output_layer``'s by ``bias.output``, the others by
    ``bias.hidden``, recurrent ones counted once (:func:`_recurrent_biases`); record each in
    ``assignment``. Biases of pretrained layers (``assignment`` says so) keep their values."""
    hidden = bias.get("hidden", "zeros")
    get_bias_rule(hidden, "hidden")
    rule = bias.get("output", "zeros")
    get_bias_rule(rule, "output")
    if rule != "zeros" and output_layer is None:
        raise ConfigError(
            f"bias.output={rule!r} needs the model's output layer: declare it "
            "(model.output_layer; output_layer= in Python) or give a batch of inputs to find it"
        )
    found_lstm = False
    for module_name, module in model.named_modules():
        if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
            found_lstm |= _recurrent_biases(module, module_name, bias, ctx, seed, assignment)
            continue
        for b_name, w_name in _BIASED_WEIGHTS:  # a bias, and the weight whose fan it has
            b, w = getattr(module, b_name, None), getattr(module, w_name, None)
            if not isinstance(b, nn.Parameter) or not isinstance(w, Tensor) or w.dim() < 2:
                continue
            name = f"{module_name}.{b_name}" if module_name else b_name
            if assignment.get(name, {}).get("scheme") == "pretrained":
                continue
            output = module_name == output_layer and b_name == "bias"
            kind, how = ("output", rule) if output else ("hidden", hidden)
            rule_ctx = dataclasses.replace(
                ctx, params=dict(bias), fan_in=math.prod(w.shape[1:]),
                generator=param_generator(seed, name),
            )  # fmt: skip
            b.copy_(get_bias_rule(how, kind)(b, rule_ctx))
            assignment[name] = {"scheme": how, "bias": kind}
    if output_layer is not None and rule != "zeros" and f"{output_layer}.bias" not in assignment:
        raise ConfigError(
            f"bias.output={rule!r} needs an output layer with a bias; {output_layer!r} has none"
        )
    if bias.get("forget_gate") is not None and not found_lstm:
        raise ConfigError(
            f"bias.forget_gate={bias['forget_gate']!r} is invalid: the model has no LSTM; use null"
        )


def _recurrent_biases(
    module: nn.Module, prefix: str, bias: dict, ctx: BiasContext, seed: int, assignment
) -> bool:
    """RNN/LSTM/GRU biases, counted once: the cell adds ``bias_ih + bias_hh``.

    Each vector gets the ``bias.hidden`` rule with ``part`` ``ih`` or ``hh`` and fan H (the
    hidden size, PyTorch's bound 1/√H for ``default``). Then, for an LSTM (gates i, f, g, o),
    ``bias.forget_gate`` = v sets the f slice of ``bias_ih`` to v and of ``bias_hh`` to 0:
    effective forget bias v (Jozefowicz et al. 2015: 1; Gers et al. 2000: up to 2).
    Returns whether the module is an LSTM.
    """
    how = bias.get("hidden", "zeros")
    h = module.hidden_size
    is_lstm = isinstance(module, (nn.LSTM, nn.LSTMCell))
    forget = bias.get("forget_gate") if is_lstm else None
    for pname, b in module.named_parameters(recurse=False):
        name = f"{prefix}.{pname}" if prefix else pname
        if not pname.startswith("bias_") or assignment.get(name, {}).get("scheme") == "pretrained":
            continue
        part = "ih" if pname.startswith("bias_ih") else "hh"
        rule_ctx = dataclasses.replace(
            ctx, params=dict(bias), fan_in=h, generator=param_generator(seed, name), part=part
        )
        b.copy_(get_bias_rule(how, "hidden")(b, rule_ctx))
        entry = {"scheme": how, "bias": "recurrent"}
        if forget is not None:
            b[h : 2 * h] = float(forget) if part == "ih" else 0.0
            entry["effective_forget_bias"] = float(forget)
        assignment[name] = entry
    return is_lstm
