"""What the init library needs to know of a model, besides its parameters and modules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from torch import nn


@runtime_checkable
class InitModel(Protocol):
    """The model contract of the init library: a model says its activation and its output layer.

    Who reads it: :func:`~initsweep.init.apply.initialize` (``activation`` gives the default
    gain of the fan-scaled schemes; the ``bias.output`` rule sets ``output_layer``'s bias) and
    the step-0 diagnostics (the loss at init is read off the output layer's bias; dead and
    saturated units are counted for ``activation``). A model may also name
    ``pretrained_params``, parameters loaded from a checkpoint, which only explicit
    ``init.rules`` touch. initsweep's own models (``initsweep.models``) carry all three.
    """

    activation: str  # a torch.nn.init.calculate_gain name, or gelu / silu
    output_layer: str  # the dotted name of the module that produces the outputs


@dataclass(frozen=True)
class ModelFacts:
    """What :class:`InitModel` says of one model, with the defaults for what it leaves out."""

    activation: str = "linear"
    output_layer: str | None = None
    pretrained: frozenset[str] = frozenset()


def model_facts(model: nn.Module) -> ModelFacts:
    """Read :class:`InitModel`'s attributes off ``model`` (gain 1 and no output layer if absent)."""
    return ModelFacts(
        activation=getattr(model, "activation", "linear"),
        output_layer=getattr(model, "output_layer", None),
        pretrained=frozenset(getattr(model, "pretrained_params", ())),
    )
