"""M copies of an MLP as stacked weights: one batched matrix product per layer for all copies.

Copy i's ``Linear`` weight becomes slice i of one ``[M, ...]`` tensor. The first layer sees the
same batch in every copy, so it is one GEMM ``[B, in] x [in, M*out]``; the later layers are
``baddbmm`` over the copy dimension, their weights kept as ``[M, in, out]`` so that autograd
writes their gradients without a transposing copy. A prototype on the 2-core CPU measured this
at about 35 % faster than ``torch.func.vmap`` of the same model (shared/notes/perf-prototype.md).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from initsweep.models.mlp import ACTIVATIONS, MLP

_ELEMENTWISE = tuple(ACTIVATIONS.values())  # act on [M, B, H] as on [B, H]


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

    def forward(self, x: Tensor, masks: list[Tensor] | None = None) -> Tensor:
        """Outputs ``[M, B, K]`` for a shared batch ``x [B, ...]``.

        ``masks`` are the dropout multipliers ``[M, B, H]`` in the order of
        :meth:`dropout_specs`; ``None`` is eval mode (no dropout).
        """
        h, k = x.flatten(1), 0
        for op in self.plan:
            if op[0] == "linear":
                h = self._linear(h, self.params[op[1]], op[2] and self.params[op[2]], op[1])
            elif op[0] == "act":
                h = op[1](h)
            elif masks is not None:
                h, k = h * masks[k], k + 1
        return h

    def _linear(self, h: Tensor, w: Tensor, b: Tensor | None, name: str) -> Tensor:
        if name not in self.transposed:
            # the shared batch: one GEMM [B, in] x [in, M*out] for every copy, seen as [M, B, out]
            m, out_f, in_f = w.shape
            flat_w = w.reshape(m * out_f, in_f).t()
            y = h @ flat_w if b is None else torch.addmm(b.reshape(-1), h, flat_w)
            return y.view(-1, m, out_f).transpose(0, 1)
        if b is None:
            return torch.bmm(h, w)
        return torch.baddbmm(b.unsqueeze(1), h, w)

    def copy_values(self, i: int) -> dict[str, Tensor]:
        """Copy i's parameters in the template's own layout (detached views)."""
        return {
            name: p[i].detach().t() if name in self.transposed else p[i].detach()
            for name, p in self.params.items()
        }

    def load_copy(self, i: int, values: dict[str, Tensor]) -> None:
        """Set copy i's parameters from ``values`` (the template's layout)."""
        with torch.no_grad():
            for name, p in self.params.items():
                p[i].copy_(self._stored(name, values[name]))
