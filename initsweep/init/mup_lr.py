r"""μP's per-parameter learning rates: ``mup.MuAdam`` / ``mup.MuSGD``, with the readout folded.

Yang et al. 2022 (TP V), Table 3; the numbers are those of Microsoft's ``mup`` package
(``mup/optim.py``), by each parameter's width dimensions (:class:`~initsweep.init.widths.MuParam`,
:math:`m` its width multiplier, :math:`m_{in}`, :math:`m_{out}` a matrix's fan-in and fan-out
ones):

=================  ==========================  ==========================
parameter          Adam-like (``MuAdam``)      SGD-like (``MuSGD``)
=================  ==========================  ==========================
hidden (2 widths)  lr / m_in, wd · m_in        lr · m_out/m_in, wd · m_in/m_out
vector-like (1)    lr, wd                      lr · m, wd / m
fixed (none)       lr, wd                      lr, wd
=================  ==========================  ==========================

The readout is vector-like in ``mup`` (its fan-in is its one width) and carries the forward
multiplier :math:`c = \alpha/m_{in}` of ``MuReadout``. initsweep folds :math:`c` into the weight
(:mod:`initsweep.init.mup`), so its learning rate, weight decay and Adam's ε are what ``mup``'s
give the folded weight :math:`W = cW'`: a gradient step on :math:`W'` of size
:math:`\eta'` moves :math:`W` by :math:`c^2\eta'` (SGD) or :math:`c\eta'` (Adam, whose ε then
acts as ε/c), and coupled weight decay :math:`\lambda'` acts as :math:`\lambda'/c^2` (decoupled,
AdamW: :math:`\lambda'/c`). Every number is a multiplier of the optimizer's own ``lr``,
``weight_decay`` and ``eps``.
"""

from __future__ import annotations

import torch

from initsweep.errors import ConfigError
from initsweep.init.widths import MuParam

# "Adam-like" optimizers normalise the gradient entrywise (mup/optim.py's docstring)
ADAM_LIKE = tuple(
    getattr(torch.optim, n)
    for n in ("Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad")
)
DECOUPLED = (torch.optim.AdamW,)  # weight decay applied to the weight, not added to the gradient
SGD_LIKE = (torch.optim.SGD,)


def kind_of(optimizer: type) -> str:
    """``adam`` or ``sgd``: which of μP's rules an optimizer class follows."""
    if isinstance(optimizer, type) and issubclass(optimizer, ADAM_LIKE):
        return "adam"
    if isinstance(optimizer, type) and issubclass(optimizer, SGD_LIKE):
        return "sgd"
    names = ", ".join(c.__name__ for c in (*ADAM_LIKE, *SGD_LIKE))
    raise ConfigError(
        f"init=mup: optimizer {getattr(optimizer, '__name__', optimizer)!r} has no μP learning "
        f"rates; use one of torch.optim's {names}"
    )


def _mup_numbers(mu: MuParam, kind: str) -> tuple[float, float]:
    """``mup``'s (lr, weight decay) multipliers for the parameter as ``mup`` stores it."""
    if mu.ninf == 2:
        ratio = mu.width_mult if kind == "adam" else mu.mult(1) / mu.mult(0)
        return 1 / ratio, ratio
    if mu.ninf == 1 and kind == "sgd":
        return mu.width_mult, 1 / mu.width_mult
    return 1.0, 1.0


def multipliers(
    widths: dict[str, MuParam], optimizer: type, output_mult: float = 1.0
) -> dict[str, dict[str, float]]:
    """Per parameter name, the multipliers of ``lr``, ``weight_decay`` and (Adam) ``eps``."""
    kind = kind_of(optimizer)
    out = {}
    for name, mu in widths.items():
        lr, wd = _mup_numbers(mu, kind)
        eps = 1.0
        if mu.role == "output":
            c = output_mult / mu.mult(1)
            if kind == "sgd":
                lr, wd = lr * c * c, wd / (c * c)
            else:
                lr, eps = lr * c, 1 / c
                wd = wd / c if issubclass(optimizer, DECOUPLED) else wd / (c * c)
        out[name] = {"lr": lr, "weight_decay": wd} | ({"eps": eps} if kind == "adam" else {})
    return out
