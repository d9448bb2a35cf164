"""Apply a weight scheme, per-layer rules and bias rules to one model copy.

Every draw uses its own ``torch.Generator`` seeded from (seed, parameter name), so changing one
layer's scheme never shifts another layer's draws. Draws happen on the CPU, so a seed gives the
same initial weights on every device.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
from typing import Any

import torch
from torch import nn

from initsweep.errors import ConfigError
from initsweep.init.bias import BiasContext
from initsweep.init.registry import COMMON_INIT_KEYS, get_bias_rule, get_scheme, scheme_params

# calculate_gain has no entry for these; the second-moment gains 1/sqrt(E[phi(z)^2]), z ~ N(0, 1)
_EXTRA_GAINS = {"gelu": 1.534, "silu": 1.677, "linear": 1.0, "identity": 1.0}


def param_generator(seed: int, name: str) -> torch.Generator:
    """A CPU generator seeded from a stable hash of (seed, parameter name)."""
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def activation_gain(activation: str) -> float:
    """``torch.nn.init.calculate_gain`` for the model's activation (second-moment convention)."""
    if activation in _EXTRA_GAINS:
        return _EXTRA_GAINS[activation]
    return torch.nn.init.calculate_gain(activation)


def _scheme_call(scheme: str, params: dict[str, Any], gain: float | None, key: str) -> dict:
    """The keyword arguments a scheme gets: its own parameters, gain resolved, common keys dropped."""
    accepted = scheme_params(scheme)
    unknown = set(params) - set(accepted) - set(COMMON_INIT_KEYS)
    if unknown:
        raise ConfigError(
            f"{key}: scheme {scheme!r} takes no parameter {sorted(unknown)}; it takes {sorted(accepted)}"
        )
    kwargs = {k: v for k, v in params.items() if k in accepted and v is not None}
    if "gain" in accepted and gain is not None:
        kwargs["gain"] = gain
    return kwargs


def _draw(tensor: torch.Tensor, scheme: str, kwargs: dict, scale: float, gen: torch.Generator):
    with torch.no_grad():
        get_scheme(scheme)(tensor, **kwargs, generator=gen)
        if scale != 1.0:
            tensor.mul_(scale)


def _check_positive(key: str, value: float | None) -> None:
    if value is not None and not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{key}={value!r} is invalid: must be a finite number > 0")


def initialize(
    model: nn.Module, init: dict, bias: dict, ctx: BiasContext, seed: int
) -> list[dict[str, Any]]:
    """Initialize ``model`` in place; return which parameter got which scheme with which numbers."""
    scheme = init["name"]
    get_scheme(scheme)
    _check_positive("init.gain", init.get("gain"))
    _check_positive("init.scale", init.get("scale", 1.0))
    act_gain = activation_gain(getattr(model, "activation", "linear"))
    gain = init.get("gain") if init.get("gain") is not None else act_gain
    scale = init.get("scale", 1.0)
    kwargs = _scheme_call(scheme, init, gain, "init")
    output = getattr(model, "output_layer", None)
    assignment: dict[str, dict[str, Any]] = {}

    # 1. the default scheme on every weight (>= 2 dims); norm-layer scales keep their defaults
    for name, p in model.named_parameters():
        if p.dim() >= 2:
            _draw(p, scheme, kwargs, scale, param_generator(seed, name))
            assignment[name] = {"scheme": scheme, **kwargs, "scale": scale}

    # 2. biases: hidden ones by bias.hidden, the output layer's by the output rule
    for module_name, module in model.named_modules():
        b = getattr(module, "bias", None)
        w = getattr(module, "weight", None)
        if not isinstance(b, nn.Parameter) or w is None or w.dim() < 2:
            continue
        name = f"{module_name}.bias"
        if module_name == output:
            rule = bias.get("output", "zeros")
            rule_ctx = BiasContext(ctx.task, ctx.class_prior, ctx.targets, ctx.loss, dict(bias))
            with torch.no_grad():
                b.copy_(get_bias_rule(rule, "bias.output")(b, rule_ctx))
            assignment[name] = {"rule": rule}
        else:
            assignment[name] = _hidden_bias(b, w, bias, seed, name)

    # 3. per-layer rules, in order, on top of the defaults
    for i, rule in enumerate(init.get("rules") or []):
        _apply_rule(model, rule, i, gain, seed, assignment)
    return [{"param": k, **v} for k, v in assignment.items()]


def _hidden_bias(b, w, bias: dict, seed: int, name: str) -> dict[str, Any]:
    how = bias.get("hidden", "zeros")
    with torch.no_grad():
        if how == "zeros":
            b.zero_()
        elif how == "constant":
            b.fill_(float(bias.get("hidden_value", 0.0)))
        elif how == "default":  # PyTorch's reset_parameters bias: U(+-1/sqrt(fan_in))
            bound = 1.0 / math.sqrt(math.prod(w.shape[1:]))
            b.uniform_(-bound, bound, generator=param_generator(seed, name))
        else:
            raise ConfigError(
                f"bias.hidden={how!r} is invalid: use one of zeros, constant, default"
            )
    return {"rule": how}


def _apply_rule(model, rule: dict, i: int, gain: float, seed: int, assignment: dict) -> None:
    key = f"init.rules[{i}]"
    if "pattern" not in rule or "scheme" not in rule:
        raise ConfigError(f"{key}={dict(rule)!r} is invalid: a rule needs 'pattern' and 'scheme'")
    params = dict(rule.get("params") or {})
    scale = params.pop("scale", 1.0)
    kwargs = _scheme_call(rule["scheme"], params, params.get("gain", gain), key)
    matched = [
        (n, p) for n, p in model.named_parameters() if fnmatch.fnmatchcase(n, rule["pattern"])
    ]
    if not matched:
        names = ", ".join(n for n, _ in model.named_parameters())
        raise ConfigError(
            f"{key}.pattern={rule['pattern']!r} matches no parameter; parameters: {names}"
        )
    for name, p in matched:
        _draw(p, rule["scheme"], kwargs, scale, param_generator(seed, name))
        assignment[name] = {"scheme": rule["scheme"], **kwargs, "scale": scale, "rule": i}
