"""Registries of weight schemes and bias rules: a scheme is a small pure function plus a name.

A weight scheme has torch's signature shape: ``name_(tensor, <its parameters>, *, generator=None)``,
fills ``tensor`` in place and returns it. Its parameters become typed config keys
(``init.<param>``) through :func:`scheme_schema`, so adding a scheme is one decorated function and
one ``initsweep/conf/init/<name>.yaml``. Keyword-only parameters after ``*`` (besides the
generator) are not config keys but facts of the tensor's module the apply layer passes in
(``groups``, ``hidden_size``: :mod:`initsweep.init.sites`). Facts ride along with
the registration:

- ``gain_source`` (required of a scheme with a ``gain`` parameter): who defines the gain that
  ``init.gain=null`` means, the function's default (1 everywhere but He's): a citation such as
  ``"Glorot & Bengio 2010"``, or a function of the scheme's other parameters returning
  ``(gain, why)`` (He's rectifier gain). See :mod:`initsweep.init.gain`.
- ``moments(shape, **params) -> (mean, std)``: the theoretical mean and std of the entries, written
  independently of the sampler; the step-0 diagnostics print it next to the measured std and the
  tests check every scheme against it.

A bias rule is ``name(bias, ctx) -> Tensor`` where ``ctx`` is a :class:`~initsweep.init.bias.BiasContext`;
output rules (``bias.output``) and hidden rules (``bias.hidden``) are two tables of one registry,
so adding either is one decorated function and one ``initsweep/conf/bias/<name>.yaml``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
import warnings
from collections.abc import Callable
from typing import Any, Literal, Optional, Union

from initsweep.choice import Choice, make_choice
from initsweep.errors import ConfigError

_SCHEMES: dict[str, Callable[..., Any]] = {}  # name -> in-place init function
# name -> who defines its default gain: a citation, or (other params) -> (gain, why)
_GAIN_SOURCE: dict[str, str | Callable[..., tuple[float, str]]] = {}
_MOMENTS: dict[str, Callable[..., tuple[float, float]]] = {}  # name -> theoretical (mean, std)
_FAMILY: dict[str, str | Callable[..., str]] = {}  # name -> shape of the entries' distribution
# name -> (plan, whether the model must declare residual branches): initsweep.init.residual
_RESIDUAL: dict[str, tuple[Callable[..., Any], bool]] = {}
_CHOICES: dict[str, type[Choice]] = {}  # enum types of the schemes' Literal parameters, by name
# kind (output | hidden) -> name -> bias rule
_BIAS_RULES: dict[str, dict[str, Callable[..., Any]]] = {"output": {}, "hidden": {}}
BIAS_KEYS = {"output": "bias.output", "hidden": "bias.hidden"}  # the config key of each kind
# what a report can draw over a histogram at init: U(mean ± sqrt(3) std), a Gaussian, a Gaussian
# cut at ±2σ whose std after the cut is the scheme's, the marginal of a Haar-orthogonal matrix
FAMILIES = ("uniform", "normal", "truncated", "orthogonal")
# keys every weight scheme's config has, whatever its function takes
COMMON_INIT_KEYS = ("name", "gain", "scale", "rules")
ACT = "act"  # init.gain=act: the model activation's gain (initsweep.init.gain)
# the OmegaConf type of init.gain (a typo such as init.gain=acr fails at compose time); int too,
# because Hydra parses init.gain=2 as an int
GainSetting = Optional[Union[float, int, Literal["act"]]]  # noqa: UP007, UP045 (OmegaConf)


def _register(table: dict, kind: str, fn: Callable, name: str | None) -> str:
    key = name or fn.__name__.rstrip("_")
    if key in table:
        raise ValueError(f"{kind} {key!r} is registered twice")
    table[key] = fn
    return key


def register_scheme(
    fn: Callable | None = None,
    *,
    name: str | None = None,
    gain_source: str | Callable[..., tuple[float, str]] | None = None,
    moments: Callable[..., tuple[float, float]] | None = None,
    family: str | Callable[..., str] | None = None,
    residual: Callable[..., Any] | None = None,
    needs_branches: bool = True,
):
    """Register a weight scheme under its function name without the trailing ``_``.

    ``family`` is the shape of the entries' distribution for a report to draw over their
    histogram: one of :data:`FAMILIES`, or a function of the scheme's parameters returning one.
    ``residual`` is a scheme's rule by a layer's role in a residual branch (Fixup, GPT-2, ...):
    ``plan(model, facts, params) -> [Placement]``, run after the scheme has drawn every weight
    (:mod:`initsweep.init.residual`); ``needs_branches``: the plan refuses a model that does not
    declare its branches (False: it uses them where declared, as ZerO).
    """

    def deco(f: Callable) -> Callable:
        has_gain = "gain" in inspect.signature(f).parameters
        if has_gain != (gain_source is not None):
            raise ValueError(f"{f.__name__}: a scheme with a gain names its gain_source, no other")
        wrapped = _zero_elements_no_op(f)
        key = _register(_SCHEMES, "weight scheme", wrapped, name)
        if gain_source is not None:
            _GAIN_SOURCE[key] = gain_source
        if moments is not None:
            _MOMENTS[key] = moments
        if family is not None:
            _FAMILY[key] = family
        if residual is not None:
            _RESIDUAL[key] = (residual, needs_branches)
        return wrapped

    return deco if fn is None else deco(fn)


def _zero_elements_no_op(f: Callable) -> Callable:
    """``f``, but a tensor with no elements is returned as it is, with PyTorch's warning.

    ``torch.nn.init.kaiming_*_`` do so ("Initializing zero-element tensors is a no-op"); without
    it a fan of 0 divides by zero (``xavier_*``) or trips a scheme's own checks.
    """

    @functools.wraps(f)
    def scheme(tensor, *args, **kwargs):
        if 0 in tensor.shape:
            warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
            return tensor
        return f(tensor, *args, **kwargs)

    return scheme


def register_bias_rule(
    fn: Callable | None = None, *, name: str | None = None, kind: str = "output"
):
    """Register a bias rule of ``kind`` (``output``: ``bias.output``; ``hidden``: ``bias.hidden``)
    under ``name``, by default its function name without the trailing ``_``."""

    def deco(f: Callable) -> Callable:
        _register(_BIAS_RULES[kind], f"{kind} bias rule", f, name)
        return f

    return deco if fn is None else deco(fn)


def list_schemes() -> list[str]:
    return sorted(_SCHEMES)


def list_bias_rules(kind: str = "output") -> list[str]:
    return sorted(_BIAS_RULES[kind])


def get_scheme(name: str, key: str = "init.name") -> Callable:
    if name not in _SCHEMES:
        raise ConfigError(
            f"{key}={name!r} is not a weight scheme; choose one of: {', '.join(list_schemes())}"
        )
    return _SCHEMES[name]


def get_bias_rule(name: str, kind: str = "output") -> Callable:
    if name not in _BIAS_RULES[kind]:
        valid = ", ".join(list_bias_rules(kind))
        raise ConfigError(f"{BIAS_KEYS[kind]}={name!r} is not a bias rule; choose one of: {valid}")
    return _BIAS_RULES[kind][name]


def gain_reference(name: str) -> str | Callable[..., tuple[float, str]] | None:
    """Who defines the scheme's default gain (``gain_source``); None if it takes no gain."""
    return _GAIN_SOURCE.get(name)


def residual_plan(name: str) -> Callable[..., Any] | None:
    """The scheme's residual plan (``register_scheme(residual=...)``), or None."""
    return _RESIDUAL.get(name, (None, False))[0]


def needs_branches(name: str) -> bool:
    """Does the scheme refuse a model that does not declare its residual branches?"""
    return _RESIDUAL.get(name, (None, False))[1]


def scheme_params(name: str) -> dict[str, inspect.Parameter]:
    """The scheme's own config parameters: the ones before ``*`` (not the tensor)."""
    sig = inspect.signature(get_scheme(name))
    return {
        p: v
        for p, v in list(sig.parameters.items())[1:]
        if v.kind is not inspect.Parameter.KEYWORD_ONLY
    }


def context_params(name: str) -> set[str]:
    """Facts of the parameter's module a scheme asks for: its keyword-only parameters after
    ``*`` besides ``generator`` (``groups`` of a conv, ``hidden_size`` of an RNN)."""
    sig = inspect.signature(get_scheme(name))
    return {
        p
        for p, v in sig.parameters.items()
        if v.kind is inspect.Parameter.KEYWORD_ONLY and p != "generator"
    }


def with_defaults(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` completed with the function's defaults: the numbers the scheme really used."""
    return {p: params.get(p, v.default) for p, v in scheme_params(name).items()}


def theoretical_moments(
    name: str, shape: tuple[int, ...], params: dict[str, Any]
) -> tuple[float, float] | None:
    """The scheme's (mean, std) of the entries for ``shape``; None when it depends on data or
    the shape has no entries."""
    if name not in _MOMENTS or 0 in shape:
        return None
    context = {k: params[k] for k in context_params(name) if k in params}
    return _MOMENTS[name](tuple(shape), **with_defaults(name, params), **context)


def theoretical_family(name: str, params: dict[str, Any]) -> str | None:
    """The scheme's distribution family (see :data:`FAMILIES`) for these parameters, or None."""
    fam = _FAMILY.get(name)
    return fam(**with_defaults(name, params)) if callable(fam) else fam


def _camel(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


def _choice(param: str, values: tuple[str, ...]) -> type[Choice]:
    """The enum of a ``Literal`` parameter, one per distinct values, named after both (so the
    name does not depend on which scheme asked first)."""
    name = _camel(param) + "Of" + "".join(_camel(v) for v in values)
    if name not in _CHOICES:
        _CHOICES[name] = make_choice(name, values, __name__)
    return _CHOICES[name]


def __getattr__(name: str) -> type[Choice]:
    """Parameter enums by name (a pickled config refers to them so): make them on first use."""
    for scheme in list_schemes():
        scheme_schema(scheme)
    if name in _CHOICES:
        return _CHOICES[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _config_type(name: str, ann: Any) -> Any:
    """The OmegaConf type of a scheme parameter: primitives as they are, a ``Literal`` of strings
    as a :class:`~initsweep.choice.Choice` enum (a typo then fails at compose time with Hydra's
    list of the valid values), ``X | None`` as ``Optional[X]``."""
    origin = typing.get_origin(ann)
    if origin is typing.Literal:
        return _choice(name, typing.get_args(ann))
    if origin in (types.UnionType, typing.Union):  # OmegaConf reads Optional[...] only
        return typing.Union[tuple(_config_type(name, a) for a in typing.get_args(ann))]  # noqa: UP007
    if ann in (int, float, str, bool, type(None)):
        return ann
    return Any


def scheme_schema(name: str) -> type:
    """A dataclass typing ``init`` for this scheme: the common keys plus the function's parameters.

    Stored in Hydra's ConfigStore as ``schema/init/<name>``, so ``init.mode=fan_ot`` or
    ``init.gain=abc`` fails when the config is composed, not an hour into a job.
    """
    fields: list[tuple] = [
        ("name", str, dataclasses.field(default=name)),
        # a number, "act" (the model activation's) or None (the reference's): initsweep.init.gain
        ("gain", GainSetting, dataclasses.field(default=None)),
        ("scale", float, dataclasses.field(default=1.0)),  # multiplies the drawn tensor
        ("rules", list[Any], dataclasses.field(default_factory=list)),  # per-layer overrides
    ]
    hints = typing.get_type_hints(get_scheme(name))
    for pname, p in scheme_params(name).items():
        if pname not in COMMON_INIT_KEYS:
            fields.append(
                (
                    pname,
                    _config_type(pname, hints.get(pname, Any)),
                    dataclasses.field(default=p.default),
                )
            )
    cls_name = "".join(part.title() for part in name.split("_")) + "InitConfig"
    return dataclasses.make_dataclass(cls_name, fields)
