r"""The residual-branch contract: where a model's residual branches are, for the schemes that need it.

A residual block computes :math:`s \cdot x + g \cdot f(x)` (post-LN: a norm of it), where f is
the *branch*. Fixup zeroes the last layer of each branch and scales the others by the number of
branches; SkipInit and ReZero start the scalar g at 0; GPT-2 scales each branch's last layer by
:math:`1/\sqrt{\#\text{branches}}`; DeepNorm sets the skip scale s = α and scales the value and
the output projections by β; T-Fixup scales them by depth. None of this can be read off the
modules' types or names reliably, so a model *declares* its branches: a method
``residual_branches()`` returning :class:`ResidualBranch` entries (:class:`ResidualModel`).
initsweep's residual models (``initsweep.models.GPT``, ``ResidualMLP``, ``ResNet``) do; a
model of your own follows the same contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from torch import Tensor, nn

from initsweep.errors import ConfigError

# where a user reads how to declare the branches (every refusal below points there)
HOW = "docs/tutorials/residual-init.md"


@dataclass(frozen=True)
class ResidualBranch:
    """One residual branch f of a block :math:`s \\cdot x + g \\cdot f(x)`, by dotted names.

    ``layers``: the modules with a weight on the branch's signal path, input side first;
    ``layers[-1]`` is the branch's *last layer* (Fixup and ZerO zero it; GPT-2 scales it). An
    attention branch lists its value projection, then its output projection (the signal goes
    through v; q and k only weigh it): ``("attn.v", "attn.proj")``.
    ``block``: the index of the residual block (the transformer layer) it belongs to, from 0;
    the two branches of a transformer layer share it (depth N counts blocks, not branches).
    ``gain``: a one-element parameter g multiplying f(x) (SkipInit's and ReZero's α, Fixup's
    multiplier), or None. ``skip``: a module whose float attribute ``skip_scale`` is s (DeepNorm's
    α), or None. ``query_key``: an attention branch's query and key projections (off the signal
    path; DeepNorm and T-Fixup give them their own gain).
    """

    block: int
    layers: tuple[str, ...]
    gain: str | None = None
    skip: str | None = None
    query_key: tuple[str, ...] = ()


@runtime_checkable
class ResidualModel(Protocol):
    """A model with residual branches says where they are.

    Who calls it: :func:`branches`, which the residual schemes' plans (``gpt2``, ``fixup``,
    ``skipinit``, ``rezero``, ``t_fixup``, ``deepnorm``, ``zero``) call from
    :func:`~initsweep.init.apply.initialize`, once per model copy, before any draw. What must
    hold: every name is a module (``layers``, ``query_key``, ``skip``) or parameter (``gain``)
    of the model; a branch lists at least one layer; the list is the same for every copy.
    """

    def residual_branches(self) -> Sequence[ResidualBranch]: ...


def branches(model: nn.Module, scheme: str) -> list[ResidualBranch]:
    """The model's declared branches, checked; a model that declares none is refused in one line
    naming the scheme and how to declare them."""
    if not isinstance(model, ResidualModel):
        raise ConfigError(
            f"init.name={scheme!r} needs the model's residual branches: {type(model).__name__} "
            f"declares none (give it a residual_branches() method returning "
            f"initsweep.init.ResidualBranch entries, see {HOW}; or use model=residual_mlp, "
            "resnet or gpt)"
        )
    found = list(model.residual_branches())
    if not found:
        raise ConfigError(
            f"init.name={scheme!r}: {type(model).__name__}.residual_branches() is empty; the "
            "scheme needs at least one residual branch"
        )
    modules, params = dict(model.named_modules()), dict(model.named_parameters())
    for b in found:
        for name in (*b.layers, *b.query_key):
            weight = getattr(modules.get(name), "weight", None)
            if not isinstance(weight, Tensor) or weight.dim() < 2:
                raise ConfigError(
                    f"{type(model).__name__}.residual_branches() names {name!r}, which is not a "
                    "layer with a weight of this model"
                )
        if not b.layers:
            raise ConfigError(
                f"{type(model).__name__}.residual_branches(): a branch of block {b.block} "
                "lists no layer"
            )
        if b.gain is not None and (b.gain not in params or params[b.gain].numel() != 1):
            raise ConfigError(
                f"{type(model).__name__}.residual_branches() names gain {b.gain!r}, which is "
                "not a one-element parameter of this model"
            )
        if b.skip is not None and not isinstance(
            getattr(modules.get(b.skip), "skip_scale", None), float
        ):
            raise ConfigError(
                f"{type(model).__name__}.residual_branches() names skip {b.skip!r}, which is "
                "not a module with a float skip_scale"
            )
    return found


def depth(found: Sequence[ResidualBranch]) -> int:
    """The number of residual blocks N (distinct ``block`` indices)."""
    return len({b.block for b in found})


@dataclass(frozen=True)
class Placement:
    """What a residual scheme's plan does to one parameter after the scheme's own draw.

    ``target`` is a parameter (redrawn with the registered ``scheme`` and ``kwargs``, times
    ``factor``: the same generator as its first draw, so a factor alone rescales that draw), or,
    with ``scheme`` None, a module whose ``skip_scale`` becomes ``factor``. ``why`` is what
    ``init.json`` records next to it.
    """

    target: str
    scheme: str | None
    kwargs: dict
    factor: float
    why: str


def weight(layer: str) -> str:
    return f"{layer}.weight"


def gains(found: Sequence[ResidualBranch], scheme: str, model: nn.Module, value: float, why: str):
    """Placements setting every branch gain to ``value``; a branch without one is refused in one
    line saying how to declare it (a scheme whose whole point is the gain: SkipInit, ReZero)."""
    missing = [b for b in found if b.gain is None]
    if missing:
        raise ConfigError(
            f"init.name={scheme!r} needs a scalar gain on every residual branch: "
            f"{type(model).__name__} declares none on {len(missing)} of {len(found)} (build it "
            "with model.branch_gain=true, or declare ResidualBranch.gain)"
        )
    names = dict.fromkeys(b.gain for b in found)  # a gain shared by two branches is set once
    return [Placement(g, "constant", {"value": value}, 1.0, why) for g in names]
