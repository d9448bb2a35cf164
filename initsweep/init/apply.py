"""Apply a weight scheme, per-layer rules and bias rules to one model copy.

Works on any ``nn.Module``; what a parameter is follows from the module that owns it
(:mod:`.sites`: fans, stacked gates and q/k/v, groups, normalisation layers). Order: (0)
normalisation layers to weight 1, bias 0; (1) the default scheme on every weight (≥ 2 dims),
then a residual scheme's plan by each layer's role in a residual branch (:mod:`.residual`);
(2) biases (:mod:`.bias`): hidden ones by ``bias.hidden``, the output layer's by
``bias.output``, recurrent ones counted once, the LSTM forget gate; (3) ``init.rules`` in order,
matched by parameter name pattern and/or module type; (4) LSUV's data pass over the weights that
got ``lsuv``. Under ``init=mup`` (:mod:`.mup`) the biases of step (2) are drawn at their base
width, as its weights are. What the model must say of itself (activation, output layer) is
:class:`.InitModel`; what it does not say is found (:func:`.model_facts`).

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
from initsweep.init.model import LEAKY_SLOPE, ModelFacts, model_facts
from initsweep.init.mup import check_settings, rescale_biases
from initsweep.init.registry import (
    COMMON_INIT_KEYS,
    context_params,
    get_scheme,
    residual_plan,
    scheme_params,
    with_defaults,
)
from initsweep.init.residual import Placement
from initsweep.init.sites import Site, sites
from initsweep.init.widths import HOW_TO_DECLARE


def _check_positive(key: str, value: float | None) -> None:
    if value is not None and not (
        isinstance(value, (int, float)) and value > 0 and math.isfinite(value)
    ):
        raise ConfigError(f"{key}={value!r} is invalid: must be a finite number > 0")


def _scheme_call(
    scheme: str, params: dict[str, Any], activation: str, key: str, slope: float = LEAKY_SLOPE
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
    gain = resolve_gain(scheme, params, activation, f"{key}.gain", slope)
    if gain is None:
        return with_defaults(scheme, kwargs), {}
    kwargs["gain"] = gain[0]
    return with_defaults(scheme, kwargs), {"gain_source": gain[1]}


def _site_kwargs(scheme: str, kwargs: dict, site: Site) -> dict:
    """What the parameter's module adds to the scheme's arguments: its stacked blocks (for a
    scheme with ``blocks`` left at None) and the module facts the scheme asks for."""
    extra = {k: site.context[k] for k in context_params(scheme) if k in site.context}
    if "blocks" in kwargs and kwargs["blocks"] is None:
        extra["blocks"] = site.blocks
    return extra


def _draw(p: Tensor, site: Site, scheme: str, kwargs: dict, scale: float, seed: int, key: str):
    """Fill ``p`` with ``scheme``; return the arguments it really took (for ``init.json``)."""
    used = {**kwargs, **_site_kwargs(scheme, kwargs, site)}
    with torch.no_grad():
        try:
            get_scheme(scheme)(p, **used, generator=param_generator(seed, site.name))
        except ConfigError as e:  # name the parameter the scheme could not fill
            where = "" if key == "init" else f"{key}: "
            raise ConfigError(f"{where}{e} (parameter {site.name})") from None
        if scale != 1.0:
            p.mul_(scale)
    return used


def initialize(
    model: nn.Module,
    init: dict,
    bias: dict,
    ctx: BiasContext,
    seed: int,
    x_train: Tensor | None = None,
    *,
    facts: ModelFacts | None = None,
) -> list[dict[str, Any]]:
    """Initialize ``model`` in place; return which parameter got which scheme with which numbers.

    ``x_train`` (the training inputs) is needed by data-dependent schemes (``lsuv``), and to
    find the output layer of a model that does not name it. ``facts``: the model's activation
    and output layer, when the caller established them (:func:`.model_facts`).
    """
    scheme = init["name"]
    get_scheme(scheme)
    scale = init.get("scale", 1.0)
    _check_positive("init.scale", scale)
    if facts is None:
        facts = model_facts(model, sample=None if x_train is None else x_train[:2])
    activation = facts.activation
    kwargs, why = _scheme_call(scheme, init, activation, "init", facts.negative_slope)
    # loaded weights (a pretrained torchvision body) keep their values; only explicit rules touch them
    pretrained = facts.pretrained
    assignment: dict[str, dict[str, Any]] = {name: {"scheme": "pretrained"} for name in pretrained}
    if scheme == "mup":
        check_settings(init)
    if "mup" in (scheme, *(r.get("scheme") for r in init.get("rules") or [])):
        if facts.widths is None:  # never the base scheme in μP's name
            raise ConfigError(f"init=mup needs the model's width: {HOW_TO_DECLARE}")
    params = dict(model.named_parameters())
    where = sites(model)
    for name, site in where.items() if facts.widths is not None else ():
        site.context["mu"] = facts.widths.get(name)  # μP: the parameter against its base shape

    # 0. normalisation layers: scale 1, shift 0 (a model's own init does not leak in)
    for name, site in where.items():
        if site.kind == "norm" and name not in pretrained:
            one = name.rsplit(".", 1)[-1] == "weight"
            with torch.no_grad():
                params[name].fill_(1.0 if one else 0.0)
            assignment[name] = {"scheme": "ones" if one else "zeros", "norm": True}

    # 1. the default scheme on every weight (>= 2 dims).
    # A weight it cannot fill (delta_orthogonal on a Linear) is an error only if no rule covers it
    refused: dict[str, ConfigError] = {}
    for name, site in where.items():
        if site.kind == "weight" and name not in pretrained:
            try:
                used = _draw(params[name], site, scheme, kwargs, scale, seed, "init")
            except ConfigError as e:
                refused[name] = e
                continue
            assignment[name] = {"scheme": scheme, **used, **why, "scale": scale}

    # 1b. a residual scheme's plan: by each layer's role in the model's residual branches
    plan = residual_plan(scheme)
    for p in plan(model, facts, kwargs) if plan is not None else ():
        _place(model, p, where, params, scheme, scale, seed, assignment)

    # 2. biases (under μP, those drawn at ±1/√fan_in are drawn at their base fan)
    apply_biases(model, bias, ctx, seed, assignment, facts.output_layer)
    if scheme == "mup":
        rescale_biases(params, facts.widths, assignment)

    # 3. per-layer rules, in order, on top of the defaults
    for i, rule in enumerate(init.get("rules") or []):
        _apply_rule(params, where, dict(rule), i, facts, seed, assignment)
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


def _place(model, p: Placement, where, params, scheme: str, scale: float, seed: int, assignment):
    """Carry out one placement of a residual plan; ``init.scale`` multiplies weights only."""
    why = {"residual": p.why}
    if p.scheme is None:  # a skip scale (DeepNorm's alpha): a float the forward reads
        model.get_submodule(p.target).skip_scale = p.factor
        assignment[f"{p.target}.skip_scale"] = {"scheme": scheme, "skip_scale": p.factor, **why}
        return
    if assignment.get(p.target, {}).get("scheme") == "pretrained":
        return
    factor = p.factor * scale if where[p.target].kind == "weight" else p.factor
    kwargs = with_defaults(p.scheme, p.kwargs)
    used = _draw(params[p.target], where[p.target], p.scheme, kwargs, factor, seed, "init")
    assignment[p.target] = {"scheme": p.scheme, **used, "scale": factor, **why}


RULE_KEYS = ("pattern", "module", "scheme", "params")


def _apply_rule(params, where, rule: dict, i: int, facts: ModelFacts, seed: int, assignment):
    """``init.rules[i]``: ``scheme`` (with ``params``) on the parameters whose name matches
    ``pattern`` (fnmatch) and whose module is a ``module`` (a class name, e.g. ``Conv2d``,
    matching subclasses). A rule without a pattern takes the module's weights (≥ 2 dims)."""
    key = f"init.rules[{i}]"
    if "scheme" not in rule or not {"pattern", "module"} & set(rule) or set(rule) - set(RULE_KEYS):
        raise ConfigError(
            f"{key}={rule!r} is invalid: a rule is {{pattern, scheme, params (optional)}} with a "
            "module (a class name) instead of or besides the pattern, e.g. {pattern: out.weight, "
            "scheme: zeros} or {module: Conv2d, scheme: kaiming_normal, params: {mode: fan_out}}"
        )
    scheme = rule["scheme"]
    get_scheme(scheme, f"{key}.scheme")
    rule_params = dict(rule.get("params") or {})
    scale = rule_params.pop("scale", 1.0)
    _check_positive(f"{key}.params.scale", scale)
    kwargs, why = _scheme_call(
        scheme, rule_params, facts.activation, f"{key}.params", facts.negative_slope
    )
    pattern, module = rule.get("pattern"), rule.get("module")
    matched = [
        n
        for n, site in where.items()
        if (fnmatch.fnmatchcase(n, pattern) if pattern else site.kind == "weight")
        and (module is None or module in site.module_types)
    ]
    if not matched:
        what = " and ".join(f"{key}.{k}={rule[k]!r}" for k in ("pattern", "module") if k in rule)
        names = ", ".join(f"{n} ({type(s.module).__name__})" for n, s in where.items())
        raise ConfigError(f"{what} matches no parameter; parameters: {names}")
    for name in matched:
        used = _draw(params[name], where[name], scheme, kwargs, scale, seed, key)
        assignment[name] = {"scheme": scheme, **used, **why, "scale": scale, "rule": i}
