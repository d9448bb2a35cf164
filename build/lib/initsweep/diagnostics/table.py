"""The step-0 diagnostics as a terminal table (``initsweep-probe``): per layer, mean over seeds."""

from __future__ import annotations

import statistics

from initsweep.render import render_table

COLUMNS = [  # (header, init.json key, format)
    ("w std", "weight_std", "{:.4g}"),
    ("theory", "theory_std", "{:.4g}"),
    ("pre mean", "preact_mean", "{:.3g}"),
    ("pre std", "preact_std", "{:.4g}"),
    ("dead", "dead_frac", "{:.0%}"),
    ("sat", "saturated_frac", "{:.0%}"),
    ("|grad|", "grad_norm", "{:.3g}"),
    ("eff rank", "effective_rank", "{:.1f}"),
    ("cos", "mean_cosine", "{:.3f}"),
]


def _mean(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def format_layers(report: dict) -> str:
    """Per-layer table (mean over seeds; ``-`` where a value does not apply) plus the loss at init.

    The gain column says which gain the scheme drew with and why (seed 0's: the same for all)."""
    seeds = report["seeds"]
    header = ["param", "shape", "scheme", "gain", *(c[0] for c in COLUMNS)]
    rows = []
    for i, layer in enumerate(seeds[0]["layers"]):
        shape = "x".join(map(str, layer["shape"]))
        cells = [layer["param"], shape, str(layer["scheme"]), layer.get("gain_source") or "-"]
        for _, key, fmt in COLUMNS:
            v = _mean([s["layers"][i][key] for s in seeds])
            cells.append("-" if v is None else fmt.format(v))
        rows.append(cells)
    loss_rows = [
        [
            str(s["seed"]),
            f"{s['expected_loss']:.5f}",
            f"{s['measured_loss']:.5f}",
            f"{s['excess']:+.5f}",
        ]
        for s in seeds
    ]
    title = f"step-0 diagnostics, mean over {len(seeds)} seed(s); loss {report['loss']} ({report['task']})"
    # text columns left-aligned, numbers right-aligned
    layers = render_table(header, rows, align="llll" + "r" * len(COLUMNS))
    loss_table = render_table(["seed", "expected", "measured", "excess"], loss_rows, align="rrrr")
    return f"{title}\n{layers}\n\nloss at init\n{loss_table}"
