"""Apply a weight scheme, per-layer rules and bias rules to one model copy.

Order: (1) the default scheme on every weight (≥ 2 dims); (2) biases (:mod:`.bias`): hidden
ones by ``bias.hidden``, the output layer's by ``bias.output``, recurrent ones counted once, the
LSTM forget gate; (3) ``init.rules`` in order; (4) LSUV's data pass over the weights that got
``lsuv``. What the model must say of itself (activation, output layer) is :class:`.InitModel`.

Every draw uses its own ``torch.Generator`` seeded from (seed, parameter name), so changing one
layer's scheme never shifts another layer's draws. Draws happen on the CPU, so a seed gives the
same initial weights on every device.

``init.gain`` is a number, ``act`` (the model activation's gain) or null (the scheme's reference
gain: 1, He's rectifier √2): :mod:`.gain`. A rule's gain is its own ``params.gain``, resolved the
same way; the assignment records the gain drawn with and why (``gain_source``).
"""

from __future__ import annotations

import fnmatch
import math
from typing import Any

import torch
from torch import Tensor, nn

from initsweep.errors import ConfigError
from initsweep.init.bias import BiasContext, apply_biases
from initsweep.init.gain import resolve_gain
from initsweep.init.generators import param_generator
from initsweep.init.lsuv import lsuv_rescale
from initsweep.init.model import model_facts
from initsweep.init.registry import (
    COMMON_INIT_KEYS,
    get_scheme,
    scheme_params,
    with_defaults,
)


def _check_positive(key: str, value: float | None) -> None:
    if value is not None and not (
        isinstance(value, (int, float)) and value > 0 and math.isfinite(value)
    ):
        raise ConfigError(f"{key}={value!r} is invalid: must be a finite number > 0")


def _scheme_call(
    scheme: str, params: dict[str, Any], activation: str, key: str
) -> tuple[dict, dict]:
    """The scheme's keyword arguments, every default filled in and the gain resolved, and what
    the assignment records besides them (``gain_source``: why that gain)."""
    accepted = scheme_params(scheme)
    unknown = set(params) - set(accepted) - set(COMMON_INIT_KEYS)
    if unknown:
        raise ConfigError(
            f"{key}: scheme {scheme!r} takes no parameter {sorted(unknown)}; it takes {sorted(accepted)}"
        )
    kwargs = {k: v for k, v in params.items() if k in accepted and v is not None}
    gain = resolve_gain(scheme, params, activation, f"{key}.gain")
    if gain is None:
        return with_defaults(scheme, kwargs), {}
    kwargs["gain"] = gain[0]
    return with_defaults(scheme, kwargs), {"gain_source": gain[1]}


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
    facts = model_facts(model)
    activation = facts.activation
    kwargs, why = _scheme_call(scheme, init, activation, "init")
    # loaded weights (a pretrained torchvision body) keep their values; only explicit rules touch them
    pretrained = facts.pretrained
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
            assignment[name] = {"scheme": scheme, **kwargs, **why, "scale": scale}

    # 2. biases
    apply_biases(model, bias, ctx, seed, assignment, facts.output_layer)

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
    kwargs, why = _scheme_call(scheme, params, activation, f"{key}.params")
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
        assignment[name] = {"scheme": scheme, **kwargs, **why, "scale": scale, "rule": i}
