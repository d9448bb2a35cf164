"""M copies of any module ``vmap`` can batch: stacked parameters and buffers, one forward.

The generic path for models without a hand-written stack (cnn, resnet18, efficientnet_b0/b1, a
user's module): parameters and buffers are stacked with ``torch.func.stack_module_state`` and
one ``functional_call`` is vmapped over the copy dimension, the buffers under
``in_dims=(0, 0, None)`` too. So batch norm in training mode normalises each copy with its own
batch statistics and updates that copy's running statistics in place, and in eval mode each
copy uses its own; any other buffer a forward reads or updates stacks the same way.

Random draws (dropout, attention dropout, stochastic depth) come from each copy's own stream
(:class:`~initsweep.train.draws.CopyDraws`), so a copy's numbers do not depend on the others. A
forward that draws nothing runs without that mode, under ``randomness="error"``: a random op
that appears later fails loudly instead of giving every copy the same numbers.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from initsweep.train.draws import CopyDraws


class VmapStack:
    """The same interface as :class:`~initsweep.train.stacked.StackedMLP`, for any module.

    ``generators``: each copy's random stream (``None``: the forward may not draw).
    """

    def __init__(self, models: list[nn.Module], generators: list | None = None) -> None:
        params, buffers = stack_module_state(models)
        self.params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
        self.buffers = {k: v.detach().clone() for k, v in buffers.items()}
        self.saved = state_names(models[0])
        # structure only; weights and buffers come stacked
        self.base = with_batched_noise(copy.deepcopy(models[0])).to("meta")
        self.generators = generators
        self.draws: bool | None = None  # does a training forward draw? known after the first
        self._vmapped: dict[tuple[bool, bool], object] = {}

    def __len__(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def dropout_specs(self, batch: int) -> list:
        return []  # random draws run inside the model, from each copy's stream

    def _forward_fn(self, per_copy: bool, random: bool):
        key = (per_copy, random)
        if key not in self._vmapped:

            def one(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor) -> Tensor:
                return functional_call(self.base, (p, b), (x,))

            self._vmapped[key] = vmap(
                one,
                in_dims=(0, 0, 0 if per_copy else None),
                randomness="different" if random else "error",
            )
        return self._vmapped[key]

    def forward(
        self, x: Tensor, masks: list[Tensor] | None = None, per_copy: bool = False
    ) -> Tensor:
        """Outputs ``[M, B, K]``; ``masks=None`` is eval mode, a list (even empty) train mode.

        ``x`` is one batch ``[B, ...]`` for every copy, or with ``per_copy`` a batch per copy
        ``[M, B, ...]``.
        """
        train = masks is not None
        self.base.train(train)
        if not train:
            with no_mha_fastpath():  # its fused kernel has no batching rule: a loop per copy
                return self._forward_fn(per_copy, False)(self.params, self.buffers, x)
        if self.draws is False:
            return self._forward_fn(per_copy, False)(self.params, self.buffers, x)
        if self.generators is None:
            raise ValueError("a stack without random streams cannot train a model that draws")
        draws = CopyDraws(self.generators, stacked=True, strict=True)
        with draws:
            out = self._forward_fn(per_copy, True)(self.params, self.buffers, x)
        if self.draws is None:
            self.draws = draws.seen > 0
        return out

    def copy_values(self, i: int) -> dict[str, Tensor]:
        """Copy i's parameters and buffers, as its ``state_dict`` names them."""
        stacked = {**self.params, **self.buffers}
        return {key: stacked[name][i].detach() for key, name in self.saved.items()}

    def copy_grads(self, i: int) -> dict[str, Tensor]:
        return {name: p.grad[i] for name, p in self.params.items() if p.grad is not None}

    def load_copy(self, i: int, values: dict[str, Tensor]) -> None:
        """Set copy i from a ``state_dict`` of the model (a tied weight comes under each of its
        names: the same values twice)."""
        stacked = {**self.params, **self.buffers}
        with torch.no_grad():
            for key, name in self.saved.items():
                stacked[name][i].copy_(values[key])


def state_names(model: nn.Module) -> dict[str, str]:
    """Each ``state_dict`` key of ``model`` and the stacked tensor behind it: a tied weight's
    every name maps to the one name ``stack_module_state`` keeps; non-persistent buffers, which
    a ``state_dict`` leaves out, are left out."""
    kept = {id(t): n for n, t in [*model.named_parameters(), *model.named_buffers()]}
    saved = model.state_dict(keep_vars=True)
    return {key: kept[id(t)] for key, t in saved.items() if id(t) in kept}


@contextmanager
def no_mha_fastpath() -> Iterator[None]:
    """``nn.MultiheadAttention``'s eval forward without its fused fast path, for the block."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


class _BatchedNoiseStochasticDepth(nn.Module):
    """torchvision's ``StochasticDepth`` with its noise made from the input (``new_empty``), so
    that under ``vmap`` each copy draws its own; the same numbers as the original alone."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.dim() - 1) if self.mode == "row" else [1] * x.dim()
        noise = x.new_empty(size).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise


def with_batched_noise(model: nn.Module) -> nn.Module:
    """``model`` with its modules that draw into a fresh ``torch.empty`` (which ``vmap`` cannot
    give per-copy numbers) replaced by equivalents drawing into a tensor made from the input.
    Those modules hold no parameters or buffers, so the names stay."""
    loaded = sys.modules.get("torchvision.ops.stochastic_depth")  # never imported for this
    if loaded is None:
        return model
    for name, m in list(model.named_modules()):
        if isinstance(m, loaded.StochasticDepth):
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent), attr, _BatchedNoiseStochasticDepth(m.p, m.mode))
    return model
