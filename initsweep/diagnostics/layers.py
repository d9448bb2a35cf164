r"""Per-layer diagnostics at step 0: weights against theory, signal propagation, gradients, symmetry.

For every weight (≥ 2 dims) of one model copy, on one fixed batch of training data:

- the scheme and the gain it drew with and why (``gain_source``, e.g. ``1 (Glorot & Bengio 2010)``);
- weight mean/std/min/max (population std) and the scheme's theoretical std;
- pre-activation mean/std: the output of each Linear/Conv layer (forward hooks), the signal that
  vanishes or explodes with depth;
- ``dead_frac``: with ReLU, the fraction of units (channels) never positive on the batch;
  ``saturated_frac``: with tanh, the fraction of outputs with :math:`|\tanh z| > 0.99` (sigmoid:
  outside (0.01, 0.99)). Neither is given for the output layer (no activation follows it);
- ``grad_norm``: :math:`\lVert \partial L / \partial W \rVert_2` after one backward pass;
- the symmetry monitor (why zeros/ones fail): ``effective_rank`` = exp of the entropy of the
  normalised singular values (Roy & Vetterli 2007; 0 for an all-zero matrix) and ``mean_cosine``,
  the mean pairwise cosine of the rows (a unit's incoming weights; None with < 2 non-zero rows).

Runs eval mode (no dropout) with ``torch.autograd.grad``, so no ``.grad`` is left behind and no
random state is consumed: the step-0 diagnostics cannot change training.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from initsweep.init.model import ModelFacts, model_facts
from initsweep.init.registry import (
    context_params,
    scheme_params,
    theoretical_family,
    theoretical_moments,
)
from initsweep.train.metrics import loss_fn

HOOKED = (nn.Linear, nn.modules.conv._ConvNd)


def _num(x: float | Tensor | None) -> float | None:
    """A JSON-safe float: NaN and inf (no valid JSON) become None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _rows(w: Tensor) -> Tensor:
    """``w`` as one row per unit (its incoming weights), in float64 on the CPU; the width is
    explicit so that a zero-element weight reshapes too."""
    return w.detach().reshape(w.shape[0], math.prod(w.shape[1:])).double().cpu()


def effective_rank(w: Tensor) -> float:
    """exp(H(p)), p = σ / Σσ the normalised singular values of ``w`` flattened to rows (Roy & Vetterli 2007)."""
    s = torch.linalg.svdvals(_rows(w))
    if s.sum() <= 0:
        return 0.0
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def mean_cosine(w: Tensor) -> float | None:
    """Mean cosine over pairs of distinct non-zero rows (a unit's incoming weights)."""
    rows = _rows(w)
    rows = rows[rows.norm(dim=1) > 0]
    n = rows.shape[0]
    if n < 2:
        return None
    u = rows / rows.norm(dim=1, keepdim=True)
    total = u.sum(0).pow(2).sum() - n  # sum over i != j of <u_i, u_j>, without the n x n matrix
    return float(total / (n * (n - 1)))


def _moments(prefix: str, t: Tensor | None, extremes: bool = False) -> dict[str, float | None]:
    """``<prefix>_mean``/``_std`` (population) and, with ``extremes``, ``_min``/``_max`` of ``t``;
    None where ``t`` is None or has no elements (a zero-width layer)."""
    keys = ("mean", "std", "min", "max") if extremes else ("mean", "std")
    if t is None or t.numel() == 0:
        return {f"{prefix}_{k}": None for k in keys}
    t = t.double()
    values = {"mean": t.mean(), "std": t.std(unbiased=False), "min": t.min(), "max": t.max()}
    return {f"{prefix}_{k}": _num(values[k]) for k in keys}


def _activation_stats(
    z: Tensor, activation: str, unit_dim: int = 1
) -> tuple[float | None, float | None]:
    """(dead_frac, saturated_frac) of the units fed by pre-activation ``z``; the units lie along
    ``unit_dim`` (a conv's channels: 1; a Linear's outputs: -1, also on sequences); None for a
    layer without units."""
    if z.numel() == 0:
        return None, None
    if activation == "relu":
        units = z.movedim(unit_dim, 0)
        alive = (units > 0).reshape(units.shape[0], -1).any(dim=1)
        return 1.0 - float(alive.double().mean()), None
    if activation == "tanh":
        return None, float((z.tanh().abs() > 0.99).double().mean())
    if activation == "sigmoid":
        s = z.sigmoid()
        return None, float(((s < 0.01) | (s > 0.99)).double().mean())
    return None, None


def _theory(entry: dict[str, Any] | None, shape: tuple[int, ...]) -> dict[str, Any]:
    """The scheme's mean, std and distribution family for this weight (None where unknown)."""
    none = {"theory_mean": None, "theory_std": None, "theory_family": None}
    if entry is None or "scheme" not in entry or entry.get("bias"):
        return none
    known = set(scheme_params(entry["scheme"])) | context_params(entry["scheme"])
    params = {k: v for k, v in entry.items() if k in known}
    try:
        moments = theoretical_moments(entry["scheme"], shape, params)
    except (TypeError, ValueError):
        return none
    if moments is None:
        return none
    scale = entry.get("scale", 1.0)
    return {
        "theory_mean": _num(moments[0] * scale),
        "theory_std": _num(moments[1] * scale),
        "theory_family": theoretical_family(entry["scheme"], params),
    }


def layer_report(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    loss: str,
    huber_delta: float,
    assignment: list[dict[str, Any]],
    facts: ModelFacts | None = None,
    tokens: bool = False,
) -> list[dict[str, Any]]:
    """One row per weight of ``model`` (see the module docstring) on the batch ``(x, y)``;
    ``tokens``: the targets are per token (task tokens)."""
    by_param = {a["param"]: a for a in assignment}
    facts = facts or model_facts(model)
    activation, output = facts.activation, facts.output_layer
    preacts: dict[str, Tensor] = {}

    def keep(name: str):
        def hook(module, inputs, output) -> None:  # returns None: the output is not replaced
            preacts.setdefault(name, output.detach())

        return hook

    handles = [
        m.register_forward_hook(keep(n)) for n, m in model.named_modules() if isinstance(m, HOOKED)
    ]
    weights = [(n, p) for n, p in model.named_parameters() if p.dim() >= 2]
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            batch_loss = loss_fn(loss, huber_delta, tokens)(model(x), y)
            grads = torch.autograd.grad(batch_loss, [p for _, p in weights], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    rows = []
    for (name, w), g in zip(weights, grads):
        module = name.rpartition(".")[0]
        z = preacts.get(module) if name.endswith("weight") else None
        dead, sat = (None, None)
        if z is not None and module != output:
            linear = isinstance(model.get_submodule(module), nn.Linear)
            dead, sat = _activation_stats(z, activation, -1 if linear else 1)
        entry = by_param.get(name)
        rows.append(
            {
                "name": module,
                "param": name,
                "shape": list(w.shape),
                "scheme": entry.get("scheme") if entry else None,
                "gain_source": entry.get("gain_source") if entry else None,
                **_moments("weight", w.detach(), extremes=True),
                **_theory(entry, tuple(w.shape)),
                **_moments("preact", z),
                "dead_frac": _num(dead),
                "saturated_frac": _num(sat),
                "grad_norm": _num(g.norm()) if g is not None else None,  # None: unused
                "effective_rank": _num(effective_rank(w)),
                "mean_cosine": _num(mean_cosine(w)),
            }
        )
    return rows
