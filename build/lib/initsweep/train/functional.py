"""M copies of any buffer-free model through ``torch.func``: stacked state, ``vmap`` forward.

The generic path for models without a hand-written stack (cnn, lstm, ...): the parameters are
stacked with ``torch.func.stack_module_state`` and one ``functional_call`` is vmapped over the
copy dimension, with ``randomness="different"`` so that dropout draws other masks per copy.
Those masks come from one random stream for the whole population (not one per copy), so with
dropout a copy's numbers here depend on the other copies. On a CPU this path measured slower
than training conv copies one at a time (``make bench``); ``auto`` uses it on CUDA only.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap


class VmapStack:
    """The same interface as :class:`~initsweep.train.stacked.StackedMLP`, for any module."""

    def __init__(self, models: list[nn.Module]) -> None:
        params, _ = stack_module_state(models)
        self.params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
        self.base = copy.deepcopy(models[0]).to("meta")  # structure only; weights come stacked

        def one(p: dict[str, Tensor], x: Tensor) -> Tensor:
            return functional_call(self.base, p, (x,))

        self._forward = vmap(one, in_dims=(0, None), randomness="different")

    def __len__(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def dropout_specs(self, batch: int) -> list:
        return []  # dropout runs inside the model, under vmap's randomness="different"

    def forward(self, x: Tensor, masks: list[Tensor] | None = None) -> Tensor:
        """Outputs ``[M, B, K]``; ``masks=None`` is eval mode, a list (even empty) train mode."""
        self.base.train(masks is not None)
        return self._forward(self.params, x)

    def copy_values(self, i: int) -> dict[str, Tensor]:
        return {name: p[i].detach() for name, p in self.params.items()}

    def copy_grads(self, i: int) -> dict[str, Tensor]:
        return {name: p.grad[i] for name, p in self.params.items() if p.grad is not None}

    def load_copy(self, i: int, values: dict[str, Tensor]) -> None:
        with torch.no_grad():
            for name, p in self.params.items():
                p[i].copy_(values[name])
