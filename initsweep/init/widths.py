r"""Every parameter of a model against the same model at a base width: ``mup``'s base shapes.

As ``mup.set_base_shapes(model, base, delta)`` does (Yang et al. 2022, TP V; Microsoft's
``mup``), the model is built again at ``init.base_width`` and at twice it (through the
constructor key its ``width_key`` names) and every parameter's shape compared: a dimension that
differs between the two is a width, with multiplier ``dim / base_dim`` (:class:`MuParam`). A
weight with two width dimensions is *hidden*, one whose fan-out alone is a width an *input*
layer (or an embedding), the declared output layer the *readout*; a vector (bias, norm scale)
of a width is *vector-like*. Used by ``init=mup`` (:mod:`.mup`) and the coordinate check.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from initsweep.errors import ConfigError, invalid

ROLES = ("input", "hidden", "output", "vector", "fixed")
HOW_TO_DECLARE = (
    "declare which constructor key sets the model's width: model.width_key (e.g. width; "
    "width_key = 'width' as a class attribute in Python)"
)


@dataclass(frozen=True)
class MuParam:
    """One parameter against its base shape: ``mup``'s ``InfShape``, and its role."""

    shape: tuple[int, ...]
    base: tuple[int | None, ...]  # the base size of each width dimension; None: fixed
    role: str  # one of ROLES

    def mult(self, dim: int) -> float:
        """``dim``'s width multiplier (1 for a fixed dimension)."""
        b = self.base[dim]
        return 1.0 if b is None else self.shape[dim] / b

    @property
    def ninf(self) -> int:
        return sum(b is not None for b in self.base)

    @property
    def width_mult(self) -> float:
        """``InfShape.width_mult()``: the last width dimension's multiplier (a matrix's fan-in)."""
        dims = [d for d, b in enumerate(self.base) if b is not None]
        return self.mult(dims[-1]) if dims else 1.0

    @property
    def base_shape(self) -> tuple[int, ...]:
        return tuple(s if b is None else b for s, b in zip(self.shape, self.base))


def _role(name: str, module: nn.Module, p: MuParam, output_layer: str) -> str:
    if p.ninf == 0:
        return "fixed"
    if len(p.shape) < 2:
        return "vector"
    if p.ninf > 2:
        raise ConfigError(f"init=mup: {name} has {p.ninf} width dimensions; μP handles 2 at most")
    if p.ninf == 2:
        return "hidden"
    if name == f"{output_layer}.weight":
        if isinstance(module, nn.Embedding):
            raise ConfigError(
                f"init=mup: the readout {output_layer!r} is an input embedding too (a tied head); "
                "μP scales the two differently and initsweep folds the readout's multiplier into "
                "its weight: untie them (model.tied=false)"
            )
        return "output"
    if p.base[1] is not None and not isinstance(module, nn.Embedding):
        raise ConfigError(
            f"init=mup: {name} maps a width (fan-in {p.shape[1]}) to a fixed size "
            f"({p.shape[0]}) but is not the readout (model.output_layer={output_layer!r}); "
            "set model.output_layer to it, or make its fan-out a width"
        )
    return "input"


def width_facts(
    make_model: Callable[..., nn.Module], width_key: str | None, base_width: int, output_layer
) -> dict[str, MuParam]:
    """Every parameter's :class:`MuParam`, from the model made by ``make_model`` (a partial)
    and the same model at ``base_width`` and at twice it (``mup.set_base_shapes(model, base,
    delta)``); refuses in one line what μP cannot parametrise."""
    if not width_key:
        raise ConfigError(f"init=mup needs the model's width: {HOW_TO_DECLARE}")
    if output_layer is None:
        raise ConfigError(
            "init=mup needs the readout: set model.output_layer (or output_layer on the class)"
        )
    if not (isinstance(base_width, int) and base_width >= 1):
        raise invalid("init.base_width", base_width, "must be an integer >= 1")
    width = make_model.keywords.get(width_key, _default(make_model.func, width_key))

    def at(w: int) -> dict[str, tuple[int, ...]]:
        listed = isinstance(width, Sequence) and not isinstance(width, str)  # MLP.hidden
        value = [w] * len(width) if listed else w
        model = make_model(**{width_key: value})
        return {n: tuple(p.shape) for n, p in model.named_parameters()}

    model = make_model()
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    base, delta = at(base_width), at(2 * base_width)
    if not set(shapes) == set(base) == set(delta):
        raise ConfigError(
            f"init=mup: model.{width_key} changes which parameters the model has; "
            "μP compares the same parameters at two widths"
        )
    modules = dict(model.named_modules())
    facts = {}
    for name, shape in shapes.items():
        dims = tuple(b if b != d else None for b, d in zip(base[name], delta[name]))
        p = MuParam(shape, dims, "fixed")
        owner = modules[name.rpartition(".")[0]]
        facts[name] = MuParam(shape, dims, _role(name, owner, p, output_layer))
    return facts


def _default(fn, key: str):
    try:
        param = inspect.signature(fn).parameters.get(key)
    except (TypeError, ValueError):
        param = None
    if param is None or param.default is inspect.Parameter.empty:
        raise ConfigError(
            f"init=mup: model.width_key={key!r} is not a key of the model's constructor; "
            f"{HOW_TO_DECLARE}"
        )
    return param.default
