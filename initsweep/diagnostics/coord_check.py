r"""The coordinate check: how big each layer's activations are over the first steps, by width.

Yang et al. 2022 (TP V, §D.4 and Fig. 5; ``mup.coord_check``): train the same network at several
widths for a few steps and look at the size of every layer's output coordinates. Under a
parametrization that is right for width (μP) the curves are flat in width at every step; under
the standard one (SP) with Adam the output logits grow with width from the first update on.

Here the size is the RMS, :math:`\sqrt{\operatorname{mean}(h^2)}` over all coordinates of a
layer's output on the step's training batch, recorded in the forward pass of steps
:math:`0 \dots k` (step 0 is at init, before any update). A layer's *type* is its weight's role
against width (:class:`~initsweep.init.widths.MuParam`): ``input`` (fan-out alone is a width: the
first layer, embeddings), ``hidden`` (both), ``output`` (the readout: its outputs are the
logits). Growth with width is the slope of :math:`\log \mathrm{RMS}` against
:math:`\log \mathrm{width}` (least squares, per seed and step).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

import numpy as np
from torch import Tensor, nn

from initsweep.init.widths import MuParam
from initsweep.render import render_table

TYPES = ("input", "hidden", "output")  # in the order a table shows them


def layer_types(widths: dict[str, MuParam]) -> dict[str, str]:
    """Module name → its type (:data:`TYPES`) for every layer with a weight of ≥ 2 dims."""
    out = {}
    for name, mu in widths.items():
        module, _, leaf = name.rpartition(".")
        if leaf == "weight" and len(mu.shape) >= 2 and mu.role in TYPES:
            out[module] = mu.role
    return out


class RMSRecorder:
    """Forward hooks on the typed layers of one model: each forward appends every layer's
    output RMS to :attr:`rows` with the current :attr:`step` (the caller sets it)."""

    def __init__(self, model: nn.Module, types: dict[str, str], **tags) -> None:
        self.rows: list[dict] = []
        self.step = 0
        self.tags = tags
        modules = dict(model.named_modules())
        self.handles = [
            modules[n].register_forward_hook(self._hook(n, t)) for n, t in types.items()
        ]

    def _hook(self, name: str, kind: str):
        def hook(_module, _inputs, output) -> None:  # returns None: the output is kept
            if isinstance(output, Tensor):
                rms = output.detach().double().pow(2).mean().sqrt()
                self.rows.append({**self.tags, "step": self.step, "module": name,
                                  "type": kind, "rms": float(rms)})  # fmt: skip

        return hook

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def record(pop, types: dict[str, str], batches: Iterable[tuple[Tensor, Tensor]], seeds, width):
    """Train ``pop`` (a sequential population: its copies are the models) one step per batch,
    recording every typed layer's output RMS in each step's forward; the rows."""
    recorders = [
        RMSRecorder(pop.module(i), types, seed=s, width=width) for i, s in enumerate(seeds)
    ]
    try:
        for step, (x, y) in enumerate(batches):
            for r in recorders:
                r.step = step
            pop.train_step(x, y)
    finally:
        for r in recorders:
            r.close()
    return [row for r in recorders for row in r.rows]


def type_means(rows: list[dict]) -> dict[tuple, float]:
    """``(type, seed, width, step)`` → the mean RMS over the layers of that type."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((r["type"], r["seed"], r["width"], r["step"]), []).append(r["rms"])
    return {k: statistics.fmean(v) for k, v in groups.items()}


def slopes(rows: list[dict]) -> dict[str, dict[int, dict[int, float]]]:
    """``type → step → seed →`` the slope of log RMS against log width (least squares)."""
    means = type_means(rows)
    out: dict[str, dict[int, dict[int, float]]] = {}
    for kind, seed, step in sorted({(k[0], k[1], k[3]) for k in means}):
        points = sorted((w, v) for (t, s, w, st), v in means.items()
                        if (t, s, st) == (kind, seed, step) and v > 0)  # fmt: skip
        if len({w for w, _ in points}) < 2:
            continue
        x, y = np.log([w for w, _ in points]), np.log([v for _, v in points])
        out.setdefault(kind, {}).setdefault(step, {})[seed] = float(np.polyfit(x, y, 1)[0])
    return out


def summarize(rows: list[dict]) -> dict:
    """What ``coord_check.json`` holds besides the rows: the widths, steps and slopes."""
    return {
        "widths": sorted({r["width"] for r in rows}),
        "steps": max((r["step"] for r in rows), default=0),
        "slopes": {
            t: {str(step): {str(s): v for s, v in by_seed.items()} for step, by_seed in d.items()}
            for t, d in slopes(rows).items()
        },
        "rows": rows,
    }


def format_coord_check(data: dict) -> str:
    """Per layer type, the mean RMS over seeds by width (rows) and step (columns), then the
    slope of log RMS in log width at each step (mean ± sd over seeds)."""
    means = type_means(data["rows"])
    steps = list(range(data["steps"] + 1))
    blocks = []
    for kind in [t for t in TYPES if any(k[0] == t for k in means)]:
        rows = []
        for w in data["widths"]:
            cells = [statistics.fmean(v for k, v in means.items() if k[0] == kind and k[2] == w
                                      and k[3] == st) for st in steps]  # fmt: skip
            rows.append([str(w), *(f"{c:.3g}" for c in cells)])
        per_step = data["slopes"].get(kind, {})
        slope_cells = [_mean_sd(list(per_step.get(str(st), {}).values())) for st in steps]
        rows.append(["slope", *slope_cells])
        header = [f"{kind} RMS: width", *(f"step {s}" for s in steps)]
        blocks.append(render_table(header, rows))
    return "\n\n".join(blocks)


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:+.2f}"
    return f"{statistics.fmean(values):+.2f}±{statistics.stdev(values):.2f}"
