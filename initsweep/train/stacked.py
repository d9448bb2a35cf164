"""M copies of an MLP as stacked weights: one batched matrix product per layer for all copies.

Copy i's ``Linear`` weight becomes slice i of one ``[M, ...]`` tensor. The first layer sees the
same batch in every copy, so it is one GEMM ``[B, in] x [in, M*out]`` forward and one
``[M*out, B] x [B, in]`` for its weight gradient (:class:`SharedInputLinear`); the later layers
are ``baddbmm`` over the copy dimension, their weights kept as ``[M, in, out]`` so that autograd
writes their gradients without a transposing copy: faster than ``torch.func.vmap`` of the same
model (``make bench``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from initsweep.models.mlp import ACTIVATIONS, MLP

_ELEMENTWISE = tuple(ACTIVATIONS.values())  # act on [M, B, H] as on [B, H]
_HAS_ONEDNN_LINEAR = torch.backends.mkldnn.is_available() and hasattr(
    torch.ops.mkldnn, "_linear_pointwise"
)


def _onednn_fp32(*tensors: Tensor) -> bool:
    return _HAS_ONEDNN_LINEAR and all(
        t.device.type == "cpu" and t.dtype == torch.float32 and t.numel() for t in tensors
    )


def gemm_nt(a: Tensor, b: Tensor, bias: Tensor | None = None) -> Tensor:
    """``a @ b.T (+ bias)`` for 2-d ``a [n, k]``, ``b [m, k]``.

    float32 on the CPU goes through oneDNN's inner-product kernel, which runs these wide shapes
    (k = 784 or 128, m = copies x 256) faster than MKL's ``addmm``/``mm``
    (docs/explanation/performance.md); other devices and dtypes use ``addmm``/``mm``. Both
    compute in float32 (no reduced-precision mode unless the user set one for oneDNN).
    """
    if _onednn_fp32(a, b):
        return torch.ops.mkldnn._linear_pointwise(
            a.contiguous(), b.contiguous(), bias, "none", [], ""
        )
    return a @ b.t() if bias is None else torch.addmm(bias, a, b.t())


class SharedInputLinear(torch.autograd.Function):
    """M copies' first layer on one shared batch: ``x [B, in]``, ``w [M, out, in]``,
    ``b [M, out]`` or ``None`` -> ``[M, B, out]`` (a view of the one ``[B, M*out]`` GEMM)."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")  # backward then runs under the same autocast
    def forward(ctx, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        m, out_f, in_f = w.shape
        y = gemm_nt(x, w.reshape(m * out_f, in_f), None if b is None else b.reshape(-1))
        return y.view(len(x), m, out_f).transpose(0, 1)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad: Tensor):
        x, w = ctx.saved_tensors
        m, out_f, in_f = w.shape
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = grad.transpose(0, 1).reshape(len(x), m * out_f) @ w.reshape(m * out_f, in_f)
        if ctx.needs_input_grad[1]:  # per copy grad_i^T x, all copies in one GEMM
            gw = gemm_nt(grad.transpose(1, 2).reshape(m * out_f, -1), x.t()).view_as(w)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = grad.sum(1)
        return gx, gw, gb


def mlp_unsupported(model: nn.Module) -> str | None:
    """Why ``model`` cannot be stacked by hand (``None`` when it can)."""
    if not isinstance(model, MLP) or type(model).forward is not MLP.forward:
        return f"{type(model).__name__} is not an MLP with the out(body(x)) forward"
    seen_linear = False
    for name, m in model.body.named_children():
        if not isinstance(m, (nn.Flatten, nn.Linear, nn.Dropout, *_ELEMENTWISE)):
            return f"body.{name} is a {type(m).__name__}, not Linear/activation/Dropout"
        if isinstance(m, nn.Dropout) and not seen_linear:
            return f"body.{name}: dropout on the input is not stacked"
        seen_linear = seen_linear or isinstance(m, nn.Linear)
    return None


class StackedMLP:
    """The stacked parameters of M ``MLP`` copies (all on one device) and their batched forward.

    ``params[name]`` is a leaf tensor ``[M, ...]`` for every parameter ``name`` of the template
    (``body.1.weight``, ``out.bias``, ...): the first layer's weight as ``[M, out, in]`` (as in
    ``nn.Linear``), later weights transposed to ``[M, in, out]``, biases ``[M, out]``.
    """

    def __init__(self, models: list[nn.Module]) -> None:
        template = models[0]
        self.plan: list[tuple] = []  # ("linear", w, b) | ("act", module) | ("dropout", p, width)
        self.transposed: set[str] = set()  # weights stored as [M, in, out]
        width = 0
        for name, m in [*(("body." + n, m) for n, m in template.body.named_children())]:
            width = self._add(name, m, width)
        self._add("out", template.out, width)
        self.params = {
            name: torch.stack(
                [self._stored(name, dict(m.named_parameters())[name]) for m in models]
            )
            .contiguous()
            .requires_grad_(True)
            for name, _ in template.named_parameters()
        }

    def _add(self, name: str, m: nn.Module, width: int) -> int:
        if isinstance(m, nn.Linear):
            if any(op[0] == "linear" for op in self.plan):
                self.transposed.add(f"{name}.weight")
            self.plan.append(("linear", f"{name}.weight", m.bias is not None and f"{name}.bias"))
            return m.out_features
        if isinstance(m, nn.Dropout):
            if m.p > 0:
                self.plan.append(("dropout", m.p, width))
        elif not isinstance(m, nn.Flatten):  # the input is flattened by the first GEMM
            self.plan.append(("act", m))
        return width

    def _stored(self, name: str, p: Tensor) -> Tensor:
        return p.detach().t() if name in self.transposed else p.detach()

    def __len__(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def dropout_specs(self, batch: int) -> list[tuple[float, tuple[int, int]]]:
        """``(p, shape)`` of each dropout layer's mask for one copy, in forward order."""
        return [(op[1], (batch, op[2])) for op in self.plan if op[0] == "dropout"]

    def forward(
        self, x: Tensor, masks: list[Tensor] | None = None, per_copy: bool = False
    ) -> Tensor:
        """Outputs ``[M, B, K]`` for a shared batch ``x [B, ...]`` (or, with ``per_copy``, a
        batch per copy ``x [M, B, ...]``).

        ``masks`` are the dropout multipliers ``[M, B, H]`` in the order of
        :meth:`dropout_specs`; ``None`` is eval mode (no dropout).
        """
        h, k = x.flatten(2) if per_copy else x.flatten(1), 0
        for op in self.plan:
            if op[0] == "linear":
                h = self._linear(h, op[1], op[2])
            elif op[0] == "act":
                h = op[1](h)
            elif masks is not None:
                h, k = h * masks[k], k + 1
        return h

    def _linear(self, h: Tensor, weight: str, bias: str | bool) -> Tensor:
        w, b = self.params[weight], self.params[bias] if bias else None
        if weight not in self.transposed:
            if h.dim() == 2:  # the shared batch: one GEMM for every copy
                return SharedInputLinear.apply(h, w, b)
            w = w.transpose(1, 2)  # a batch per copy: [M, B, in] x [M, in, out]
        if b is None:
            return torch.bmm(h, w)
        return torch.baddbmm(b.unsqueeze(1), h, w)

    def copy_values(self, i: int) -> dict[str, Tensor]:
        """Copy i's parameters in the template's own layout (detached views)."""
        return {name: self._unstored(name, p[i].detach()) for name, p in self.params.items()}

    def copy_grads(self, i: int) -> dict[str, Tensor]:
        """Copy i's gradients of the last backward, in the template's layout (views)."""
        return {
            name: self._unstored(name, p.grad[i])
            for name, p in self.params.items()
            if p.grad is not None
        }

    def _unstored(self, name: str, t: Tensor) -> Tensor:
        return t.t() if name in self.transposed else t

    def load_copy(self, i: int, values: dict[str, Tensor]) -> None:
        """Set copy i's parameters from ``values`` (the template's layout)."""
        with torch.no_grad():
            for name, p in self.params.items():
                p[i].copy_(self._stored(name, values[name]))
