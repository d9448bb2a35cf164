"""Apply a weight scheme, per-layer rules and bias rules to one model copy.

Order: (1) the default scheme on every weight (≥ 2 dims); (2) biases: hidden ones by
``bias.hidden``, the output layer's by ``bias.output``, recurrent ones counted once, the LSTM
forget gate; (3) ``init.rules`` in order; (4) LSUV's data pass over the weights that got ``lsuv``.

Every draw uses its own ``torch.Generator`` seeded from (seed, parameter name), so changing one
layer's scheme never shifts another layer's draws. Draws happen on the CPU, so a seed gives the
same initial weights on every device.

``init.gain=null`` means the scheme's reference gain: the model activation's for the fan-scaled
families (Glorot, He, Saxe, Xiao; ``init.nonlinearity`` picks another one for He), 1 for schemes
defined by a fixed distribution. A rule's gain is its own ``params.gain``, resolved the same way.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import math
from typing import Any

import torch
from torch import Tensor, nn

from initsweep.errors import ConfigError
from initsweep.init.bias import BiasContext
from initsweep.init.lsuv import lsuv_rescale
from initsweep.init.registry import (
    COMMON_INIT_KEYS,
    get_bias_rule,
    get_scheme,
    scheme_params,
    uses_activation_gain,
    with_defaults,
)

# calculate_gain has no entry for these; the second-moment gains 1/sqrt(E[phi(z)^2]), z ~ N(0, 1)
_EXTRA_GAINS = {"gelu": 1.534, "silu": 1.677, "linear": 1.0, "identity": 1.0}
_HIDDEN = ("zeros", "constant", "default")


def param_generator(seed: int, name: str) -> torch.Generator:
    """A CPU generator seeded from a stable hash of (seed, parameter name)."""
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def activation_gain(activation: str, negative_slope: float = 0.0) -> float:
    """``torch.nn.init.calculate_gain`` for the model's activation (second-moment convention)."""
    if activation in _EXTRA_GAINS:
        return _EXTRA_GAINS[activation]
    try:
        return torch.nn.init.calculate_gain(activation, negative_slope)
    except ValueError:
        raise ConfigError(
            f"activation {activation!r} has no known gain: set init.gain explicitly"
        ) from None


def _check_positive(key: str, value: float | None) -> None:
    if value is not None and not (
        isinstance(value, (int, float)) and value > 0 and math.isfinite(value)
    ):
        raise ConfigError(f"{key}={value!r} is invalid: must be a finite number > 0")


def _scheme_call(scheme: str, params: dict[str, Any], activation: str, key: str) -> dict:
    """The scheme's keyword arguments, every default filled in and the gain resolved."""
    accepted = scheme_params(scheme)
    unknown = set(params) - set(accepted) - set(COMMON_INIT_KEYS)
    if unknown:
        raise ConfigError(
            f"{key}: scheme {scheme!r} takes no parameter {sorted(unknown)}; it takes {sorted(accepted)}"
        )
    _check_positive(f"{key}.gain", params.get("gain"))
    kwargs = {k: v for k, v in params.items() if k in accepted and v is not None}
    if "gain" in accepted and "gain" not in kwargs and uses_activation_gain(scheme):
        nonlinearity = params.get("nonlinearity")
        kwargs["gain"] = activation_gain(
            nonlinearity or activation, params.get("negative_slope") or 0.0
        )
    return with_defaults(scheme, kwargs)


def _draw(p: Tensor, scheme: str, kwargs: dict, scale: float, seed: int, name: str, key: str):
    with torch.no_grad():
        try:
            get_scheme(scheme)(p, **kwargs, generator=param_generator(seed, name))
        except ConfigError as e:  # name the parameter the scheme could not fill
            where = "" if key == "init" else f"{key}: "
            raise ConfigError(f"{where}{e} (parameter {name})") from None
        if scale != 1.0:
            p.mul_(scale)


def initialize(
    model: nn.Module,
    init: dict,
    bias: dict,
    ctx: BiasContext,
    seed: int,
    x_train: Tensor | None = None,
) -> list[dict[str, Any]]:
    """Initialize ``model`` in place; return which parameter got which scheme with which numbers.

    ``x_train`` (the training inputs) is needed only by data-dependent schemes (``lsuv``).
    """
    scheme = init["name"]
    get_scheme(scheme)
    scale = init.get("scale", 1.0)
    _check_positive("init.scale", scale)
    activation = getattr(model, "activation", "linear")
    kwargs = _scheme_call(scheme, init, activation, "init")
    # loaded weights (a pretrained torchvision body) keep their values; only explicit rules touch them
    pretrained = getattr(model, "pretrained_params", frozenset())
    assignment: dict[str, dict[str, Any]] = {name: {"scheme": "pretrained"} for name in pretrained}

    # 1. the default scheme on every weight (>= 2 dims); norm-layer scales keep their defaults.
    # A weight it cannot fill (delta_orthogonal on a Linear) is an error only if no rule covers it
    refused: dict[str, ConfigError] = {}
    for name, p in model.named_parameters():
        if p.dim() >= 2 and name not in pretrained:
            try:
                _draw(p, scheme, kwargs, scale, seed, name, "init")
            except ConfigError as e:
                refused[name] = e
                continue
            assignment[name] = {"scheme": scheme, **kwargs, "scale": scale}

    # 2. biases
    _init_biases(model, bias, ctx, seed, assignment)

    # 3. per-layer rules, in order, on top of the defaults
    for i, rule in enumerate(init.get("rules") or []):
        _apply_rule(model, dict(rule), i, activation, seed, assignment)
    for name, error in refused.items():
        if name not in assignment:
            raise ConfigError(f"{error}; an init.rules entry can give it another scheme")

    # 4. LSUV: rescale the layers that got it, now that every weight and bias is set
    targets = {n: a for n, a in assignment.items() if a.get("scheme") == "lsuv"}
    if targets:
        if x_train is None or len(x_train) < 2:
            raise ConfigError("init.name='lsuv' needs a batch of training inputs (x_train)")
        size = min(max(a["batch_size"] for a in targets.values()), len(x_train))
        idx = torch.randperm(len(x_train), generator=param_generator(seed, "lsuv.batch"))[:size]
        device = next(model.parameters()).device
        lsuv_rescale(model, x_train[idx].to(device), targets, assignment)
    return [{"param": k, **v} for k, v in assignment.items()]


def _init_biases(model: nn.Module, bias: dict, ctx: BiasContext, seed: int, assignment) -> None:
    how = bias.get("hidden", "zeros")
    if how not in _HIDDEN:
        raise ConfigError(f"bias.hidden={how!r} is invalid: use one of {', '.join(_HIDDEN)}")
    rule = bias.get("output", "zeros")
    get_bias_rule(rule, "bias.output")
    output = getattr(model, "output_layer", None)
    found_lstm = False
    for module_name, module in model.named_modules():
        if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
            found_lstm |= _recurrent_biases(module, module_name, bias, seed, assignment)
            continue
        b, w = getattr(module, "bias", None), getattr(module, "weight", None)
        if not isinstance(b, nn.Parameter) or not isinstance(w, Tensor) or w.dim() < 2:
            continue
        name = f"{module_name}.bias"
        if assignment.get(name, {}).get("scheme") == "pretrained":
            continue
        fan_in = math.prod(w.shape[1:])
        with torch.no_grad():
            if module_name == output:
                rule_ctx = dataclasses.replace(
                    ctx, params=dict(bias), fan_in=fan_in, generator=param_generator(seed, name)
                )
                b.copy_(get_bias_rule(rule)(b, rule_ctx))
                assignment[name] = {"scheme": rule, "bias": "output"}
            else:
                _fill_hidden(b, how, bias, fan_in, param_generator(seed, name))
                assignment[name] = {"scheme": how, "bias": "hidden"}
    if output is not None and rule != "zeros" and f"{output}.bias" not in assignment:
        raise ConfigError(
            f"bias.output={rule!r} needs an output layer with a bias; {output!r} has none"
        )
    if bias.get("forget_gate") is not None and not found_lstm:
        raise ConfigError(
            f"bias.forget_gate={bias['forget_gate']!r} is invalid: the model has no LSTM; use null"
        )


def _fill_hidden(b: Tensor, how: str, bias: dict, fan_in: int, gen: torch.Generator) -> None:
    if how == "zeros":
        b.zero_()
    elif how == "constant":
        b.fill_(float(bias.get("hidden_value", 0.0)))
    else:  # PyTorch's reset_parameters bias: U(+-1/sqrt(fan_in))
        bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
        b.uniform_(-bound, bound, generator=gen)


@torch.no_grad()
def _recurrent_biases(module: nn.Module, prefix: str, bias: dict, seed: int, assignment) -> bool:
    """RNN/LSTM/GRU biases, counted once: the cell adds ``bias_ih + bias_hh``.

    ``zeros``: both 0. ``constant`` c: ``bias_ih`` = c, ``bias_hh`` = 0, so the effective bias is c
    (not 2c). ``default``: both U(±1/√hidden_size), as ``nn.LSTM.reset_parameters``. Then, for an
    LSTM (gates i, f, g, o), ``bias.forget_gate`` = v sets the f slice of ``bias_ih`` to v and of
    ``bias_hh`` to 0: effective forget bias v (Jozefowicz et al. 2015: 1; Gers et al. 2000: up to 2).
    Returns whether the module is an LSTM.
    """
    how = bias.get("hidden", "zeros")
    h = module.hidden_size
    is_lstm = isinstance(module, (nn.LSTM, nn.LSTMCell))
    forget = bias.get("forget_gate") if is_lstm else None
    for pname, b in module.named_parameters(recurse=False):
        if not pname.startswith("bias_"):
            continue
        name = f"{prefix}.{pname}" if prefix else pname
        ih = pname.startswith("bias_ih")
        if how == "constant":
            b.fill_(float(bias.get("hidden_value", 0.0)) if ih else 0.0)
        else:
            _fill_hidden(b, how, bias, h * h, param_generator(seed, name))  # bound 1/sqrt(H)
        entry = {"scheme": how, "bias": "recurrent"}
        if forget is not None:
            b[h : 2 * h] = float(forget) if ih else 0.0
            entry["effective_forget_bias"] = float(forget)
        assignment[name] = entry
    return is_lstm


def _apply_rule(model, rule: dict, i: int, activation: str, seed: int, assignment) -> None:
    key = f"init.rules[{i}]"
    if (
        "pattern" not in rule
        or "scheme" not in rule
        or set(rule) - {"pattern", "scheme", "params"}
    ):
        raise ConfigError(
            f"{key}={rule!r} is invalid: a rule is {{pattern, scheme, params (optional)}}"
        )
    scheme = rule["scheme"]
    get_scheme(scheme, f"{key}.scheme")
    params = dict(rule.get("params") or {})
    scale = params.pop("scale", 1.0)
    _check_positive(f"{key}.params.scale", scale)
    kwargs = _scheme_call(scheme, params, activation, f"{key}.params")
    matched = [
        (n, p) for n, p in model.named_parameters() if fnmatch.fnmatchcase(n, rule["pattern"])
    ]
    if not matched:
        names = ", ".join(n for n, _ in model.named_parameters())
        raise ConfigError(
            f"{key}.pattern={rule['pattern']!r} matches no parameter; parameters: {names}"
        )
    for name, p in matched:
        _draw(p, scheme, kwargs, scale, seed, name, key)
        assignment[name] = {"scheme": scheme, **kwargs, "scale": scale, "rule": i}
