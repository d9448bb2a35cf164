"""Registries of weight schemes and bias rules: a scheme is a small pure function plus a name.

A weight scheme has torch's signature shape: ``name_(tensor, <its parameters>, *, generator=None)``,
fills ``tensor`` in place and returns it. Its keyword parameters become typed config keys
(``init.<param>``) through :func:`scheme_schema`, so adding a scheme is one decorated function and
one ``conf/init/<name>.yaml``. Two optional facts ride along with the registration:

- ``activation_gain``: with ``init.gain=null`` the apply layer passes the model activation's gain
  (the fan-scaled families whose papers define one: Glorot, He, Saxe, Xiao). Schemes defined by a
  fixed distribution (``uniform``, ``normal``, ``sparse``, LeCun, ...) keep their own gain of 1.
- ``moments(shape, **params) -> (mean, std)``: the theoretical mean and std of the entries, written
  independently of the sampler; the step-0 diagnostics print it next to the measured std and the
  tests check every scheme against it.

A bias rule is ``name(bias, ctx) -> Tensor`` where ``ctx`` is a :class:`~initsweep.init.bias.BiasContext`.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, Optional

from initsweep.errors import ConfigError

_SCHEMES: dict[str, Callable[..., Any]] = {}  # name -> in-place init function
_ACTIVATION_GAIN: set[str] = set()  # schemes whose gain defaults to the model activation's
_MOMENTS: dict[str, Callable[..., tuple[float, float]]] = {}  # name -> theoretical (mean, std)
_BIAS_RULES: dict[str, Callable[..., Any]] = {}  # name -> bias rule
# keys every weight scheme's config has, whatever its function takes
COMMON_INIT_KEYS = ("name", "gain", "scale", "rules")


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
    activation_gain: bool = False,
    moments: Callable[..., tuple[float, float]] | None = None,
):
    """Register a weight scheme under its function name without the trailing ``_``."""

    def deco(f: Callable) -> Callable:
        key = _register(_SCHEMES, "weight scheme", f, name)
        if activation_gain:
            _ACTIVATION_GAIN.add(key)
        if moments is not None:
            _MOMENTS[key] = moments
        return f

    return deco if fn is None else deco(fn)


def register_bias_rule(fn: Callable | None = None, *, name: str | None = None):
    """Register a bias rule under its function name without the trailing ``_``."""

    def deco(f: Callable) -> Callable:
        _register(_BIAS_RULES, "bias rule", f, name)
        return f

    return deco if fn is None else deco(fn)


def list_schemes() -> list[str]:
    return sorted(_SCHEMES)


def list_bias_rules() -> list[str]:
    return sorted(_BIAS_RULES)


def get_scheme(name: str, key: str = "init.name") -> Callable:
    if name not in _SCHEMES:
        raise ConfigError(
            f"{key}={name!r} is not a weight scheme; choose one of: {', '.join(list_schemes())}"
        )
    return _SCHEMES[name]


def get_bias_rule(name: str, key: str = "bias.output") -> Callable:
    if name not in _BIAS_RULES:
        raise ConfigError(
            f"{key}={name!r} is not a bias rule; choose one of: {', '.join(list_bias_rules())}"
        )
    return _BIAS_RULES[name]


def uses_activation_gain(name: str) -> bool:
    """Does ``init.gain=null`` mean the model activation's gain for this scheme?"""
    return name in _ACTIVATION_GAIN


def scheme_params(name: str) -> dict[str, inspect.Parameter]:
    """The scheme's own config parameters: everything but the tensor and the generator."""
    sig = inspect.signature(get_scheme(name))
    return {p: v for p, v in list(sig.parameters.items())[1:] if p != "generator"}


def with_defaults(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` completed with the function's defaults: the numbers the scheme really used."""
    return {p: params.get(p, v.default) for p, v in scheme_params(name).items()}


def theoretical_moments(
    name: str, shape: tuple[int, ...], params: dict[str, Any]
) -> tuple[float, float] | None:
    """The scheme's (mean, std) of the entries for ``shape``; None when it depends on data."""
    if name not in _MOMENTS:
        return None
    return _MOMENTS[name](tuple(shape), **with_defaults(name, params))


def _config_type(ann: Any) -> Any:
    """OmegaConf types a field by primitive types only: a ``Literal`` of strings becomes ``str``."""
    origin = typing.get_origin(ann)
    if origin is typing.Literal:
        return type(typing.get_args(ann)[0])
    if origin is types.UnionType:  # ``float | None`` -> Optional[float], which OmegaConf reads
        return typing.Union[tuple(_config_type(a) for a in typing.get_args(ann))]  # noqa: UP007
    if ann in (int, float, str, bool, type(None)) or origin is typing.Union:
        return ann
    return Any


def scheme_schema(name: str) -> type:
    """A dataclass typing ``init`` for this scheme: the common keys plus the function's parameters.

    Stored in Hydra's ConfigStore as ``schema/init/<name>``, so ``init.mode=fan_ot`` or
    ``init.gain=abc`` fails when the config is composed, not an hour into a job.
    """
    fields: list[tuple] = [
        ("name", str, dataclasses.field(default=name)),
        ("gain", Optional[float], dataclasses.field(default=None)),  # noqa: UP045 (OmegaConf)  # None: the scheme's reference gain
        ("scale", float, dataclasses.field(default=1.0)),  # multiplies the drawn tensor
        ("rules", list[Any], dataclasses.field(default_factory=list)),  # per-layer overrides
    ]
    hints = typing.get_type_hints(get_scheme(name))
    for pname, p in scheme_params(name).items():
        if pname not in COMMON_INIT_KEYS:
            fields.append(
                (pname, _config_type(hints.get(pname, Any)), dataclasses.field(default=p.default))
            )
    cls_name = "".join(part.title() for part in name.split("_")) + "InitConfig"
    return dataclasses.make_dataclass(cls_name, fields)
