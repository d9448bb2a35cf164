r"""ZerO: a deterministic init of zeros, ones and Hadamard matrices (Zhao et al. 2022)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from initsweep.init.fans import check_shape
from initsweep.init.registry import register_scheme
from initsweep.init.residual import Placement, ResidualModel, branches, gains, weight


def hadamard(p: int) -> Tensor:
    """The Sylvester Hadamard matrix of order ``p`` (a power of 2): ``H_{2n} = [[H, H], [H, -H]]``
    (``scipy.linalg.hadamard``'s)."""
    h = torch.ones(1, 1)
    while h.shape[0] < p:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)])
    return h


def zero_matrix(rows: int, cols: int) -> Tensor:
    r"""ZerO's Algorithm 1 for a ``rows × cols`` matrix (jiaweizzhao/ZerO-initialization
    ``ZerO_Init_on_matrix``): the partial identity :math:`I^*` when rows ≤ cols, else
    :math:`I^* H_p I^* / \sqrt{p}` with :math:`p = 2^{\lceil \log_2 \text{rows} \rceil}`."""
    if rows <= cols:
        return torch.eye(rows, cols)
    p = 2 ** math.ceil(math.log2(rows))
    return hadamard(p)[:rows, :cols] / math.sqrt(p)


def _parity(v: Tensor) -> Tensor:
    for shift in (32, 16, 8, 4, 2, 1):
        v = v ^ (v >> shift)
    return v & 1


def _zero_moments(shape) -> tuple[float, float]:
    # H_p[i, j] = (-1)^popcount(i & j): the P x Q corner sums to S, every entry is +-1/sqrt(p)
    rows, cols, taps = shape[0], shape[1], math.prod(shape[2:])
    n = rows * cols * taps
    if rows <= cols:
        mean, square = rows / n, rows / n
    else:
        p = 2 ** math.ceil(math.log2(rows))
        signs = 1 - 2 * _parity(torch.arange(rows)[:, None] & torch.arange(cols)[None, :])
        mean, square = float(signs.sum()) / math.sqrt(p) / n, rows * cols / p / n
    return mean, math.sqrt(max(square - mean**2, 0.0))


def _zero_plan(model, facts, params) -> list[Placement]:
    if not isinstance(model, ResidualModel):  # a plain net: Algorithm 1 alone (the MLP example)
        return []
    found = branches(model, "zero")
    why = "last layer of a residual branch: 0 (ZerO)"
    plan = [Placement(weight(b.layers[-1]), "zeros", {}, 1.0, why) for b in found]
    declared = [b for b in found if b.gain is not None]
    return plan + (
        gains(declared, "zero", model, 1.0, "branch gain: 1 (ZerO)") if declared else []
    )


@register_scheme(
    moments=lambda shape: _zero_moments(shape), residual=_zero_plan, needs_branches=False
)
def zero_(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""ZerO: Algorithm 1 (:func:`zero_matrix`) on every weight, the last layer of each residual
    branch 0. Deterministic: every seed starts from the same weights (dropout still differs).

    `ZerO Initialization: Initializing Neural Networks with only Zeros and Ones` - Zhao, J.,
    Schäfer, F. & Anandkumar, A. (2022), Algorithm 1, as the authors' ``example_mnist.ipynb``
    computes it: an identity (partial where rows < cols), or for rows > cols a Hadamard
    transform normalised by :math:`\sqrt{p}` — the code's constant :math:`2^{-m/2}`,
    :math:`m = \lceil \log_2 \text{rows} \rceil`. A conv weight gets it on the centre tap of the
    kernel, zeros elsewhere. On a model that declares residual branches each branch's last layer
    is 0, so every block starts as the identity (the authors' ResNet code zeroes the convs of its
    residual branches); a model without branches gets Algorithm 1 alone.
    """
    shape = tuple(tensor.shape)
    check_shape(2 <= len(shape) <= 5, "zero", shape, "needs a weight of 2-5 dims")
    w = zero_matrix(shape[0], shape[1])
    with torch.no_grad():
        tensor.zero_()
        tensor[(slice(None), slice(None), *(k // 2 for k in shape[2:]))] = w.to(tensor)
    return tensor
