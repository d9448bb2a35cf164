r"""Structured schemes: orthogonal (Saxe), sparse (Martens), identity/Dirac, delta-orthogonal (Xiao)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from initsweep.errors import ConfigError
from initsweep.init.fans import check_gain, check_shape, fans
from initsweep.init.registry import register_scheme


def _orthogonal_moments(shape, gain, blocks):
    # a semi-orthogonal r x c block has min(r, c) unit singular values: E[w^2] = g^2 / max(r, c)
    rows, cols = shape[0] // (blocks or 1), math.prod(shape[1:])
    return 0.0, gain / math.sqrt(max(rows, cols))


def _check_blocks(scheme: str, tensor: Tensor, blocks: int) -> None:
    check_shape(
        blocks >= 1 and tensor.shape[0] % blocks == 0,
        scheme,
        tuple(tensor.shape),
        f"init.blocks={blocks} must be >= 1 and divide the {tensor.shape[0]} rows",
    )


@register_scheme(gain_source="Saxe et al. 2014", moments=_orthogonal_moments, family="orthogonal")
def orthogonal_(
    tensor: Tensor,
    gain: float = 1.0,
    blocks: int | None = None,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill with :math:`g \cdot Q`, Q a Haar-random (semi-)orthogonal matrix.

    `Exact solutions to the nonlinear dynamics of learning in deep linear neural networks` -
    Saxe, A. et al. (2014). The weight is flattened to ``(out, in·prod(k))``; A ~ N(0, 1), A = QR,
    Q ← Q·sign(diag R) so that Q is Haar-distributed (Mezzadri 2007) — exactly
    ``torch.nn.init.orthogonal_``, which we call. Rows ≤ columns: orthonormal rows
    (:math:`W W^T = g^2 I`); else orthonormal columns (:math:`W^T W = g^2 I`).

    Gain 1 by default, as in the paper (deep linear nets) and ``torch.nn.init.orthogonal_`` /
    Keras ``Orthogonal``; ``init.gain=act`` takes the activation's (torch's recipe for tanh: 5/3).

    ``blocks`` splits the rows into equal blocks, each orthogonal on its own. ``None`` (the
    default) takes the parameter's own blocks when the init library applies it: each gate of an
    LSTM/GRU weight (4 or 3), each of q, k, v of an attention projection; 1 elsewhere.
    """
    check_gain(gain)
    blocks = blocks or 1
    _check_blocks("orthogonal", tensor, blocks)
    with torch.no_grad():
        for block in tensor.chunk(blocks, 0):  # row blocks of a contiguous tensor are views
            torch.nn.init.orthogonal_(block, gain=gain, generator=generator)
    return tensor


@register_scheme(
    gain_source="Martens 2010",
    moments=lambda shape, k, gain: (0.0, gain * math.sqrt(k / fans(shape)[0])),
)
def sparse_(
    tensor: Tensor, k: int = 15, gain: float = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Martens' sparse init: each unit gets exactly ``k`` non-zero incoming weights, :math:`\mathcal{N}(0, g^2)`.

    `Deep learning via Hessian-free optimization` - Martens, J. (2010), §5: k = 15 unit-Gaussian
    incoming connections per unit, the rest 0 (also Sutskever et al. 2013). Not
    ``torch.nn.init.sparse_``, which zeroes a fraction of every *column* and draws N(0, 0.01²).
    A conv unit's incoming weights are its ``in·prod(k)`` taps. Martens sets biases to 0 (0.5 for
    tanh units): ``bias.hidden=constant bias.hidden_value=0.5``.
    """
    check_gain(gain)
    fan_in = fans(tensor)[0]
    if not 1 <= k <= fan_in:
        raise ConfigError(
            f"init.k={k!r} is invalid for shape {tuple(tensor.shape)}: "
            f"need 1 <= k <= fan_in = {fan_in}"
        )
    rows = tensor.shape[0]
    with torch.no_grad():
        # k distinct columns per row: the first k of a uniformly random permutation of each row
        keys = torch.rand(rows, fan_in, generator=generator)
        cols = keys.argsort(dim=1)[:, :k]
        values = torch.randn(rows, k, generator=generator, dtype=tensor.dtype) * gain
        flat = torch.zeros(rows, fan_in, dtype=tensor.dtype)
        flat.scatter_(1, cols, values)
        return tensor.copy_(flat.view_as(tensor))


def _identity_moments(shape, gain, blocks, groups=1):
    rows = shape[0] // (blocks or 1)
    # ones per block: dirac puts min(out/groups, in) taps in each group, eye min(rows, cols)
    ones = (blocks or 1) * groups * min(rows // groups, shape[1])
    p = ones / math.prod(shape)  # fraction of entries that are 1
    return gain * p, gain * math.sqrt(p * (1 - p))


@register_scheme(gain_source="Le, Jaitly & Hinton 2015", moments=_identity_moments)
def identity_(
    tensor: Tensor,
    gain: float = 1.0,
    blocks: int | None = None,
    *,
    groups: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill with :math:`g I`: ``eye_`` for a 2-D weight, ``dirac_`` (centre tap) for a conv.

    Rectangular weights get ones on the main diagonal. IRNN: Le, Jaitly & Hinton (2015) use the
    identity for ReLU recurrent weights. Deterministic: every seed gets the same tensor.
    ``blocks`` as for :func:`orthogonal_` (an identity per gate of a recurrent weight); a
    grouped or depthwise conv keeps its ``groups`` (``dirac_(w, groups)``: each group's
    channels map to themselves, so a depthwise identity preserves every channel).
    """
    check_gain(gain)
    check_shape(
        2 <= tensor.dim() <= 5,
        "identity",
        tuple(tensor.shape),
        "needs a 2-D weight (eye) or a conv weight (out, in, *k) with 1-3 kernel dims (dirac)",
    )
    blocks = blocks or 1
    _check_blocks("identity", tensor, blocks)
    with torch.no_grad():
        for block in tensor.chunk(blocks, 0):
            if block.dim() == 2:
                torch.nn.init.eye_(block)
            else:
                torch.nn.init.dirac_(block, groups=groups)
        return tensor.mul_(gain)


def _delta_moments(shape, gain, groups=1):
    # per group the centre tap holds in/g orthonormal columns: sum of squares g^2 * in per group,
    # over c_out * in * k entries in all (in = shape[1], the inputs per group)
    return 0.0, gain * math.sqrt(groups / (shape[0] * math.prod(shape[2:])))


@register_scheme(gain_source="Xiao et al. 2018", moments=_delta_moments)
def delta_orthogonal_(
    tensor: Tensor,
    gain: float = 1.0,
    *,
    groups: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Zeros except the kernel's centre tap, which is :math:`g \cdot Q`, Q a c_out × c_in Haar-orthogonal matrix.

    `Dynamical isometry and a mean field theory of CNNs` - Xiao, L. et al. (2018), Algorithm 2.
    The gain multiplies Q as in the paper and TF's ``ConvolutionDeltaOrthogonal`` (``q *= gain``),
    not its square root as the common PyTorch port does; its default, 1, is TF's too. Needs c_in ≤ c_out so that
    :math:`Q^T Q = I` and the convolution preserves norms. A grouped conv (weight
    ``(c_out, c_in/g, *k)``) gets one orthogonal ``c_out/g × c_in/g`` matrix per group, so each
    group's convolution preserves norms (a depthwise conv: ±g per channel).
    """
    check_gain(gain)
    shape = tuple(tensor.shape)
    check_shape(
        3 <= tensor.dim() <= 5, "delta_orthogonal", shape, "needs a conv weight (out, in, *k)"
    )
    per_group = shape[0] // groups
    check_shape(
        shape[0] % groups == 0 and per_group >= shape[1],
        "delta_orthogonal",
        shape,
        f"needs out channels per group >= in channels per group, got out={per_group} < "
        f"in={shape[1]} (groups={groups})",
    )
    centre = tuple(k // 2 for k in shape[2:])
    with torch.no_grad():
        tensor.zero_()
        for g in range(groups):
            q = torch.empty(per_group, shape[1], dtype=tensor.dtype)
            torch.nn.init.orthogonal_(q, gain=gain, generator=generator)
            rows = slice(g * per_group, (g + 1) * per_group)
            tensor[(rows, slice(None), *centre)] = q.to(tensor.device)
    return tensor
