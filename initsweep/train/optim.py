"""Build the configured optimizer with its fastest kernel: fused, else foreach, else plain."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor


def build_optimizer(
    make_optimizer: Callable[..., torch.optim.Optimizer], params: Iterable[Tensor]
) -> torch.optim.Optimizer:
    """``make_optimizer(params)`` (a Hydra partial), asking for ``fused=True`` where it can.

    SGD, Adam and AdamW have fused CPU and CUDA kernels that do the same arithmetic per element
    as the single-tensor loop, in one pass over all tensors. A ``fused``/``foreach`` set in the
    config is kept as given.
    """
    params = list(params)
    given = make_optimizer.keywords if isinstance(make_optimizer, functools.partial) else {}
    cls = getattr(make_optimizer, "func", make_optimizer)
    accepted = inspect.signature(cls).parameters if inspect.isclass(cls) else {}
    if "fused" in given or "foreach" in given:
        return make_optimizer(params)
    for option in ("fused", "foreach"):
        if option in accepted:
            try:
                return make_optimizer(params, **{option: True})
            except (RuntimeError, ValueError, TypeError):
                continue  # e.g. no fused kernel for this device or dtype
    return make_optimizer(params)


# what may differ between the copies of one stacked population (initsweep.job.group)
PER_COPY = ("lr", "momentum", "weight_decay")


def per_copy(make_optimizer, copies: int) -> list:
    """One optimizer partial per copy: ``make_optimizer`` is one for all, or already a list."""
    makers = list(make_optimizer) if isinstance(make_optimizer, (list, tuple)) else None
    if makers is None:
        return [make_optimizer] * copies
    if len(makers) != copies:
        raise ValueError(f"{len(makers)} optimizers for {copies} copies")
    return makers


def _same(a: Callable, b: Callable) -> bool:
    if not (isinstance(a, functools.partial) and isinstance(b, functools.partial)):
        return a is b
    return (a.func, a.args, dict(a.keywords)) == (b.func, b.args, dict(b.keywords))


def build_stacked_optimizer(
    makers: Sequence[Callable[..., torch.optim.Optimizer]], params: Iterable[Tensor]
) -> torch.optim.Optimizer:
    """The optimizer of stacked tensors whose dim 0 are copies, ``makers[i]`` copy i's partial.

    The same partial for every copy is that optimizer (:func:`build_optimizer`); partials of
    SGD, Adam or AdamW that differ in :data:`PER_COPY` numbers only give :class:`PerCopySGD` or
    :class:`PerCopyAdam`, one update of every copy with its own numbers.
    """
    if all(_same(makers[0], m) for m in makers):
        return build_optimizer(makers[0], params)
    funcs = {getattr(m, "func", m) for m in makers}
    cls = funcs.pop() if len(funcs) == 1 else None
    fixed = [{k: v for k, v in m.keywords.items() if k not in PER_COPY} for m in makers]
    if cls not in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW) or any(
        f != fixed[0] for f in fixed
    ):
        raise ValueError(
            f"copies of one population may differ only in {', '.join(PER_COPY)} of SGD, Adam "
            "or AdamW"
        )
    defaults = inspect.signature(cls).parameters
    numbers = {
        k: torch.tensor(
            [float(m.keywords.get(k, defaults[k].default)) for m in makers], dtype=torch.float64
        )
        for k in PER_COPY
        if k in defaults
    }
    opt = PerCopySGD if cls is torch.optim.SGD else PerCopyAdam
    return opt(list(params), **numbers, **fixed[0], decoupled=cls is torch.optim.AdamW)


class _PerCopy(torch.optim.Optimizer):
    """Shared parts: per-copy numbers as ``[M]`` tensors, broadcast over a stacked tensor."""

    def __init__(self, params, defaults: dict, numbers: dict[str, Tensor]) -> None:
        super().__init__(params, defaults)
        self.numbers = numbers
        self._placed: dict[tuple, Tensor] = {}  # on each parameter's device and dtype, once

    def _per_copy(self, name: str, p: Tensor) -> Tensor:
        key = (name, p.device, p.dtype, p.dim())
        if key not in self._placed:
            v = self.numbers[name].to(device=p.device, dtype=p.dtype)
            self._placed[key] = v.view(-1, *[1] * (p.dim() - 1))
        return self._placed[key]

    def _with_grads(self):
        """``(p, g, state)`` of every parameter with a gradient (``g`` negated to maximize)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield p, (-p.grad if self.maximize else p.grad), self.state[p]


class PerCopySGD(_PerCopy):
    """``torch.optim.SGD``'s update with a learning rate, momentum and weight decay per copy.

    Per element exactly torch's single-tensor SGD (``torch/optim/sgd.py``): g += wd·p; the
    momentum buffer starts at g, then b = μ·b + (1 − dampening)·g; Nesterov g += μ·b, else g = b;
    p −= lr·g. A copy with μ = 0 follows plain SGD (its buffer is its gradient).
    """

    def __init__(self, params, lr, momentum=None, weight_decay=None, dampening=0.0,
                 nesterov=False, maximize=False, decoupled=False, **_) -> None:  # fmt: skip
        zeros = torch.zeros_like(lr)
        numbers = {"lr": lr, "momentum": zeros if momentum is None else momentum,
                   "weight_decay": zeros if weight_decay is None else weight_decay}  # fmt: skip
        super().__init__(params, {"lr": 0.0}, numbers)
        self.dampening, self.nesterov, self.maximize = dampening, nesterov, maximize

    @torch.no_grad()
    def step(self, closure=None):
        for p, g, state in self._with_grads():
            g = g + self._per_copy("weight_decay", p) * p
            mu = self._per_copy("momentum", p)
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.clone()
            else:
                state["momentum_buffer"].mul_(mu).add_(g, alpha=1 - self.dampening)
            buf = state["momentum_buffer"]
            g = g + mu * buf if self.nesterov else buf
            p.sub_(self._per_copy("lr", p) * g)


class PerCopyAdam(_PerCopy):
    """``torch.optim.Adam`` / ``AdamW``'s update with a learning rate and weight decay per copy.

    Per element exactly torch's single-tensor Adam (``torch/optim/adam.py``): weight decay
    (AdamW: p ·= 1 − lr·wd; Adam: g += wd·p), m = lerp(m, g, 1 − β1), v = β2·v + (1 − β2)·g²,
    p −= lr/(1 − β1^t) · m / (√v/√(1 − β2^t) + ε). The step count t is kept on the host, so a
    step needs no device sync.
    """

    def __init__(self, params, lr, weight_decay=None, betas=(0.9, 0.999), eps=1e-8,
                 amsgrad=False, maximize=False, decoupled=False, **_) -> None:  # fmt: skip
        if amsgrad:
            raise ValueError("amsgrad is not supported with per-copy numbers")
        wd = torch.zeros_like(lr) if weight_decay is None else weight_decay
        super().__init__(params, {"lr": 0.0}, {"lr": lr, "weight_decay": wd})
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps, self.maximize, self.decoupled = eps, maximize, decoupled

    @torch.no_grad()
    def step(self, closure=None):
        for p, g, state in self._with_grads():
            if not state:
                state["step"] = torch.tensor(0.0)
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
            state["step"] += 1  # a CPU scalar, as torch keeps it: no device sync
            t = float(state["step"])
            lr, wd = self._per_copy("lr", p), self._per_copy("weight_decay", p)
            if self.decoupled:
                p.mul_(1 - lr * wd)
            else:
                g = g + wd * p
            state["exp_avg"].lerp_(g, 1 - self.beta1)
            state["exp_avg_sq"].mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            denom = (state["exp_avg_sq"].sqrt() / math.sqrt(1 - self.beta2**t)).add_(self.eps)
            p.sub_(lr / (1 - self.beta1**t) * state["exp_avg"] / denom)
