"""Each copy's random draws from its own stream, whether the copies run stacked or one by one.

A forward draws random numbers through a few aten ops: dropout, attention dropout and
stochastic depth all become ``bernoulli``. :class:`CopyDraws` is a ``TorchDispatchMode`` that
serves each such op from the generator of the copy it belongs to. Under
``vmap(randomness="different")`` the op reaches the mode once for all M copies, as one
``[M, ...]`` tensor, and row i is filled from generator i; a copy trained alone gets the very same
numbers from its generator. So a copy's masks depend on its own seed only, not on the other
copies nor on M, and copy i of a stack follows the numbers of copy i trained alone.

A ``bernoulli`` with a float probability (every dropout) takes DropoutStreams' fast int16 pieces
(``initsweep/train/dropout.py``: probability quantised to 1/65536, the same masks as the
hand-written MLP stack); other draws call torch's own op with the copy's generator. A random op
the mode does not know is refused in a stack (``strict``) and left to the global RNG, forked per
copy by the caller, when a copy runs alone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

from initsweep.train.dropout import keep_below, random_pieces

aten = torch.ops.aten


class CopyDraws(TorchDispatchMode):
    """Serve the random ops of a forward from per-copy generators (see the module doc).

    ``stacked``: the ops come batched over the copies (dim 0 of every tensor, M rows, one
    generator each); else they belong to one copy, ``generators[0]``. ``seen`` counts the random
    ops served: a forward that draws nothing need not run under the mode again.
    """

    def __init__(self, generators: list[torch.Generator], stacked: bool, strict: bool) -> None:
        super().__init__()
        self.generators, self.stacked, self.strict = generators, stacked, strict
        self.seen = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if torch.Tag.nondeterministic_seeded not in func.tags:
            return func(*args, **kwargs)
        self.seen += 1
        draw = DRAWS.get(func.overloadpacket)
        if draw is not None:
            return draw(self, func, *args, **kwargs)
        if self.strict:
            raise NotImplementedError(
                f"{func} draws random numbers that the stack cannot give each copy from its own "
                "stream"
            )
        return func(*args, **kwargs)

    def rows(self, t: Tensor) -> list[Tensor]:
        """Each copy's part of ``t``: its rows when stacked, else ``t`` itself."""
        if not self.stacked:
            return [t]
        if t.dim() == 0 or t.shape[0] != len(self.generators):
            raise NotImplementedError(
                f"a random draw of shape {list(t.shape)} is not batched over the "
                f"{len(self.generators)} copies"
            )
        return list(t.unbind(0))


def _bernoulli_into(mode: CopyDraws, out: Tensor, p) -> Tensor:
    """Fill ``out`` with 1 with probability ``p`` (a float, or a tensor of ``out``'s shape)."""
    if isinstance(p, Tensor):  # per-element probabilities: torch's uniform draw per copy
        for row, prob, g in zip(mode.rows(out), _rows_like(mode, p, out), mode.generators):
            u = torch.rand(row.shape, generator=g, device=row.device, dtype=torch.float64)
            row.copy_(u < prob)
        return out
    threshold = keep_below(float(p))
    for row, g in zip(mode.rows(out), mode.generators):
        row.copy_((random_pieces(g, row.numel(), row.device) < threshold).view(row.shape))
    return out


def _rows_like(mode: CopyDraws, t: Tensor, like: Tensor) -> list[Tensor]:
    """``t``'s part for each copy: its rows where it is batched like ``like``, else all of it."""
    batched = mode.stacked and t.dim() == like.dim() and t.shape[0] == like.shape[0]
    return mode.rows(t) if batched else [t] * len(mode.generators)


def _bernoulli_(mode, func, self, p=0.5, *, generator=None):
    return _bernoulli_into(mode, self, p)


def _bernoulli(mode, func, self, p=None, *, generator=None):
    # bernoulli(probs) draws with the tensor's own probabilities; bernoulli.p with a float
    return _bernoulli_into(mode, torch.empty_like(self), self if p is None else p)


def _native_dropout(mode, func, x, p, train):
    if not train or p == 0:
        return x.clone(), torch.ones_like(x, dtype=torch.bool)
    keep = _bernoulli_into(mode, torch.empty_like(x, dtype=torch.bool), 1.0 - p)
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    return x * keep * scale, keep


def _fill(method: str) -> Callable:
    """An in-place draw (``uniform_``, ``normal_``, ...): each copy's part from its generator."""

    def draw(mode, func, self, *args, generator=None, **kwargs):
        for row, g in zip(mode.rows(self), mode.generators):
            getattr(row, method)(*args, generator=g, **kwargs)
        return self

    return draw


def _factory(method: str, *fill_args) -> Callable:
    """``rand``/``randn`` (a size) and their ``_like`` forms (a tensor): an empty tensor filled
    in place per copy."""

    def draw(mode, func, shape, *args, generator=None, **kwargs):
        like = shape if isinstance(shape, Tensor) else None
        kwargs.pop("memory_format", None)
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        out = (
            torch.empty_like(like, **kwargs) if like is not None else torch.empty(shape, **kwargs)
        )
        for row, g in zip(mode.rows(out), mode.generators):
            getattr(row, method)(*fill_args, generator=g)
        return out

    return draw


DRAWS: dict = {
    aten.bernoulli_: _bernoulli_,
    aten.bernoulli: _bernoulli,
    aten.native_dropout: _native_dropout,
    aten.uniform_: _fill("uniform_"),
    aten.normal_: _fill("normal_"),
    aten.exponential_: _fill("exponential_"),
    aten.rand: _factory("uniform_", 0.0, 1.0),
    aten.rand_like: _factory("uniform_", 0.0, 1.0),
    aten.randn: _factory("normal_", 0.0, 1.0),
    aten.randn_like: _factory("normal_", 0.0, 1.0),
}
