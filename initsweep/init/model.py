"""What the init library needs to know of a model, besides its parameters and modules."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from initsweep.errors import ConfigError

log = logging.getLogger("initsweep")
LEAKY_SLOPE = 0.01  # nn.LeakyReLU's default slope, and torch.nn.init.calculate_gain's


@runtime_checkable
class InitModel(Protocol):
    """The model contract of the init library: a model says its activation and its output layer.

    Who reads it: :func:`~initsweep.init.apply.initialize` (``activation`` gives the default
    gain of the fan-scaled schemes; the ``bias.output`` rule sets ``output_layer``'s bias) and
    the step-0 diagnostics (the loss at init is read off the output layer's bias; dead and
    saturated units are counted for ``activation``). A model may also name
    ``pretrained_params``, parameters loaded from a checkpoint, which only explicit
    ``init.rules`` touch, and ``width_key``, the constructor key that sets its width (what
    ``init=mup`` and the coordinate check vary). initsweep's own models (``initsweep.models``) carry all three; any other
    ``nn.Module`` works too: its facts can be declared (the model yaml's ``output_layer`` and
    ``activation`` keys) or found (:func:`model_facts`).
    """

    activation: str  # a torch.nn.init.calculate_gain name, or gelu / silu
    output_layer: str  # the dotted name of the module that produces the outputs


@dataclass(frozen=True)
class ModelFacts:
    """What :func:`model_facts` established about one model."""

    activation: str = "linear"
    output_layer: str | None = None
    pretrained: frozenset[str] = frozenset()
    # a leaky ReLU's slope a: the model's own, else nn.LeakyReLU's and calculate_gain's 0.01
    negative_slope: float = LEAKY_SLOPE
    # μP: every parameter against its base shape (initsweep.init.mup.width_facts); None: not asked
    widths: dict | None = None


def model_facts(
    model: nn.Module, declared: dict | None = None, sample: Tensor | None = None
) -> ModelFacts:
    """The model's activation and output layer: declared, else the model's own attributes
    (:class:`InitModel`), else found.

    ``declared`` holds what the user said (``output_layer``, ``activation``). Without an
    activation it is linear (``init.gain=act`` is 1), with a logged note. A leaky ReLU's slope
    is the model's own (:func:`_leaky_slope`). Without an output layer, one forward
    pass on ``sample`` (a couple of inputs) finds it: :func:`find_output_layer`.
    """
    declared = declared or {}
    activation = declared.get("activation") or _activation_name(getattr(model, "activation", None))
    if activation is None:
        log.info(
            "%s declares no activation: init.gain=act is 1 (linear) "
            "(declare model.activation, e.g. relu, or set init.gain to a number)",
            type(model).__name__,
        )
        activation = "linear"
    output = declared.get("output_layer") or getattr(model, "output_layer", None)
    if output is not None:
        _check_layer(model, output)
    elif sample is not None:
        output = find_output_layer(model, sample)
    pretrained = frozenset(getattr(model, "pretrained_params", ()))
    slope = _leaky_slope(model, getattr(model, "activation", None))
    return ModelFacts(activation, output, pretrained, slope)


def _leaky_slope(model: nn.Module, activation) -> float:
    """The slope of the model's leaky ReLU: its ``activation`` module's, else the one slope its
    ``nn.LeakyReLU`` modules share, else 0.01 (``nn.LeakyReLU``'s default)."""
    if isinstance(activation, nn.LeakyReLU):
        return activation.negative_slope
    slopes = {m.negative_slope for m in model.modules() if isinstance(m, nn.LeakyReLU)}
    return slopes.pop() if len(slopes) == 1 else LEAKY_SLOPE


# activation modules a model may hold as ``self.activation``, by calculate_gain's names
_ACTIVATION_MODULES = {
    nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid",
    nn.SELU: "selu", nn.GELU: "gelu", nn.SiLU: "silu", nn.Identity: "linear",
}  # fmt: skip


def _activation_name(value) -> str | None:
    """A model's ``activation``: a name, or an activation module (``nn.ReLU()`` is relu)."""
    if isinstance(value, str):
        return value
    return next((n for cls, n in _ACTIVATION_MODULES.items() if type(value) is cls), None)


def _check_layer(model: nn.Module, name: str) -> None:
    modules = dict(model.named_modules())
    if name not in modules or not isinstance(getattr(modules[name], "weight", None), Tensor):
        layers = ", ".join(_layers(model)) or "(none)"
        raise ConfigError(
            f"model.output_layer={name!r} is not a layer with a weight of this model; "
            f"layers: {layers}"
        )


def _layers(model: nn.Module) -> list[str]:
    """Modules with a weight of >= 2 dims (Linear, Conv, ...): the layers that can be outputs."""
    return [
        n
        for n, m in model.named_modules()
        if isinstance(getattr(m, "weight", None), Tensor) and m.weight.dim() >= 2
    ]


@torch.no_grad()
def find_output_layer(model: nn.Module, sample: Tensor) -> str:
    """The unique last layer that produces the model's outputs, found on one forward pass.

    The outputs are that layer's output itself (the same storage: ``head(x)``, possibly
    reshaped); failing that, the one layer whose output has the outputs' shape. Anything else —
    no such layer, or several — is ambiguous: one line asks for ``model.output_layer``.
    """
    names = _layers(model)
    outputs: list[tuple[str, Tensor]] = []
    modules = dict(model.named_modules())
    hooks = [
        modules[n].register_forward_hook(
            lambda _m, _i, out, n=n: outputs.append((n, out)) if isinstance(out, Tensor) else None
        )
        for n in names
    ]
    was_training = model.training
    try:
        model.eval()
        y = model(sample)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    if not isinstance(y, Tensor):
        raise ConfigError(
            f"{type(model).__name__} returns {type(y).__name__}, not a tensor: initsweep trains "
            "models whose forward returns the outputs [N, K]"
        )
    same = [n for n, o in outputs if o.numel() == y.numel() and _shares_storage(o, y)]
    if same:
        return same[-1]
    shaped = list(dict.fromkeys(n for n, o in outputs if o.shape == y.shape))
    if len(shaped) == 1:
        return shaped[0]
    found = ", ".join(shaped) if shaped else "none"
    raise ConfigError(
        f"model.output_layer is needed: cannot tell which layer of {type(model).__name__} "
        f"produces its outputs (layers with the outputs' shape: {found}); "
        f"set model.output_layer to one of: {', '.join(names) or '(no layer with a weight)'}"
    )


def _shares_storage(a: Tensor, b: Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
