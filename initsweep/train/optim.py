"""Build the configured optimizer with its fastest kernel (fused, else foreach, else plain), with
per-parameter numbers (param groups: μP's learning rates) and per-copy numbers for stacked copies."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor

# a parameter's multipliers of its optimizer's numbers, e.g. {"lr": 0.25, "weight_decay": 4.0}
# (μP: initsweep.init.mup_lr); an empty dict or None: the optimizer's own numbers
Scales = dict[str, float] | None
SCALED = ("lr", "weight_decay", "eps")  # the numbers a parameter may scale


def named_scales(named: Iterable[tuple[str, Tensor]], by_name: dict | None) -> list[Scales]:
    """One :data:`Scales` per parameter of ``named``, looked up by name (None: none at all)."""
    return [(by_name or {}).get(n) for n, _ in named]


def _hyper(make_optimizer) -> dict[str, float]:
    """The optimizer's own values of :data:`SCALED`: given in the partial, else its defaults."""
    given = make_optimizer.keywords if isinstance(make_optimizer, functools.partial) else {}
    cls = getattr(make_optimizer, "func", make_optimizer)
    defaults = inspect.signature(cls).parameters if inspect.isclass(cls) else {}
    return {
        k: float(given[k] if k in given else defaults[k].default)
        for k in SCALED
        if k in given or (k in defaults and isinstance(defaults[k].default, (int, float)))
    }


def _runs(params: list[Tensor], rows: list) -> list[tuple[list[Tensor], object]]:
    """``params`` cut into runs of neighbours with equal ``rows`` entries, in order (so a
    parameter's index in the optimizer's state is its index in ``params``)."""
    runs: list[tuple[list[Tensor], object]] = []
    for p, row in zip(params, rows):
        if runs and runs[-1][1] == row:
            runs[-1][0].append(p)
        else:
            runs.append(([p], row))
    return runs


def param_groups(make_optimizer, params: list[Tensor], scales: list[Scales] | None) -> list:
    """``params`` as torch param groups: one per run of equal :data:`Scales`, each with its
    ``lr`` / ``weight_decay`` / ``eps`` multiplied (without scales: the plain list)."""
    if not scales or not any(scales):
        return params
    hyper = _hyper(make_optimizer)
    rows = [tuple(sorted((s or {}).items())) for s in scales]
    return [
        {"params": ps, **{k: v * dict(row).get(k, 1.0) for k, v in hyper.items()}}
        for ps, row in _runs(params, rows)
    ]


def build_optimizer(
    make_optimizer: Callable[..., torch.optim.Optimizer],
    params: Iterable[Tensor],
    scales: list[Scales] | None = None,
) -> torch.optim.Optimizer:
    """``make_optimizer(params)`` (a Hydra partial), asking for ``fused=True`` where it can.

    SGD, Adam and AdamW have fused CPU and CUDA kernels that do the same arithmetic per element
    as the single-tensor loop, in one pass over all tensors. A ``fused``/``foreach`` set in the
    config is kept as given. ``scales``, one per parameter, give parameters their own numbers
    (:func:`param_groups`).
    """
    params = param_groups(make_optimizer, list(params), scales)
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
    makers: Sequence[Callable[..., torch.optim.Optimizer]],
    params: Iterable[Tensor],
    scales: Sequence[list[Scales] | None] | None = None,
) -> torch.optim.Optimizer:
    """The optimizer of stacked tensors whose dim 0 are copies, ``makers[i]`` copy i's partial
    and ``scales[i]`` copy i's :data:`Scales`, one per parameter (None: none).

    The same partial and scales for every copy is that optimizer (:func:`build_optimizer`);
    partials of SGD, Adam or AdamW that differ in :data:`PER_COPY` numbers (or copies whose
    scales differ) give :class:`PerCopySGD` or :class:`PerCopyAdam`, one update of every copy
    with its own numbers, parameter by parameter.
    """
    params = list(params)
    scales = list(scales) if scales is not None else [None] * len(makers)
    if all(_same(makers[0], m) for m in makers) and all(s == scales[0] for s in scales):
        return build_optimizer(makers[0], params, scales[0])
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
    names = [k for k in (*PER_COPY, "eps") if k in defaults]
    own = [{k: float(m.keywords.get(k, defaults[k].default)) for k in names} for m in makers]
    # per parameter, every copy's scales: neighbours with the same ones share a group
    rows = [
        tuple(tuple(sorted(((s or [None] * len(params))[k] or {}).items())) for s in scales)
        for k in range(len(params))
    ]
    groups = []
    for ps, row in _runs(params, rows):
        numbers = {
            k: torch.tensor(
                [o[k] * dict(r).get(k, 1.0) for o, r in zip(own, row)], dtype=torch.float64
            )
            for k in names
        }
        groups.append({"params": ps, "per_copy": numbers})
    fixed[0].pop("eps", None)
    opt = PerCopySGD if cls is torch.optim.SGD else PerCopyAdam
    return opt(groups, **fixed[0], decoupled=cls is torch.optim.AdamW)


class _PerCopy(torch.optim.Optimizer):
    """Shared parts: each param group's per-copy numbers as ``[M]`` tensors
    (``group["per_copy"]``), broadcast over a stacked tensor."""

    def __init__(self, groups: list[dict], defaults: dict) -> None:
        super().__init__(groups, defaults)
        self._placed: dict[tuple, Tensor] = {}  # on each parameter's device and dtype, once

    def _per_copy(self, group: dict, name: str, p: Tensor) -> Tensor:
        key = (id(group), name, p.device, p.dtype, p.dim())
        if key not in self._placed:
            v = group["per_copy"][name].to(device=p.device, dtype=p.dtype)
            self._placed[key] = v.view(-1, *[1] * (p.dim() - 1))
        return self._placed[key]

    def _with_grads(self):
        """``(group, p, g, state)`` of every parameter with a gradient (``g`` negated to
        maximize)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield group, p, (-p.grad if self.maximize else p.grad), self.state[p]


class PerCopySGD(_PerCopy):
    """``torch.optim.SGD``'s update with a learning rate, momentum and weight decay per copy
    (and per param group: ``group["per_copy"]`` holds them, ``[M]`` each).

    Per element exactly torch's single-tensor SGD (``torch/optim/sgd.py``): g += wd·p; the
    momentum buffer starts at g, then b = μ·b + (1 − dampening)·g; Nesterov g += μ·b, else g = b;
    p −= lr·g. A copy with μ = 0 follows plain SGD (its buffer is its gradient).
    """

    def __init__(self, groups, dampening=0.0, nesterov=False, maximize=False, **_) -> None:
        super().__init__(groups, {"lr": 0.0})
        self.dampening, self.nesterov, self.maximize = dampening, nesterov, maximize

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in self._with_grads():
            g = g + self._per_copy(group, "weight_decay", p) * p
            mu = self._per_copy(group, "momentum", p)
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.clone()
            else:
                state["momentum_buffer"].mul_(mu).add_(g, alpha=1 - self.dampening)
            buf = state["momentum_buffer"]
            g = g + mu * buf if self.nesterov else buf
            p.sub_(self._per_copy(group, "lr", p) * g)


class PerCopyAdam(_PerCopy):
    """``torch.optim.Adam`` / ``AdamW``'s update with a learning rate, weight decay and ε per
    copy (and per param group: ``group["per_copy"]``, ``[M]`` each).

    Per element exactly torch's single-tensor Adam (``torch/optim/adam.py``): weight decay
    (AdamW: p ·= 1 − lr·wd; Adam: g += wd·p), m = lerp(m, g, 1 − β1), v = β2·v + (1 − β2)·g²,
    p −= lr/(1 − β1^t) · m / (√v/√(1 − β2^t) + ε). The step count t is kept on the host, so a
    step needs no device sync.
    """

    def __init__(self, groups, betas=(0.9, 0.999), amsgrad=False, maximize=False,
                 decoupled=False, **_) -> None:  # fmt: skip
        if amsgrad:
            raise ValueError("amsgrad is not supported with per-copy numbers")
        super().__init__(groups, {"lr": 0.0})
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.maximize, self.decoupled = maximize, decoupled

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in self._with_grads():
            if not state:
                state["step"] = torch.tensor(0.0)
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
            state["step"] += 1  # a CPU scalar, as torch keeps it: no device sync
            t = float(state["step"])
            lr, wd = self._per_copy(group, "lr", p), self._per_copy(group, "weight_decay", p)
            if self.decoupled:
                p.mul_(1 - lr * wd)
            else:
                g = g + wd * p
            state["exp_avg"].lerp_(g, 1 - self.beta1)
            state["exp_avg_sq"].mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            denom = state["exp_avg_sq"].sqrt() / math.sqrt(1 - self.beta2**t)
            denom = denom.add_(self._per_copy(group, "eps", p))
            p.sub_(lr / (1 - self.beta1**t) * state["exp_avg"] / denom)
