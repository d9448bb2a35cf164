"""Signal propagation at init: the pre-activation std of each layer by depth, every scheme on one
plot (log scale), in the style of Brock et al. (2021)'s signal-propagation plots.

A scheme that preserves the forward signal gives a flat line; a too-small gain decays
geometrically (a straight falling line on the log axis), a too-large one explodes. The values
are ``init.json`` ``layers[].preact_std`` where the init diagnostics wrote them, else the std of
each weighted layer's output on the fixed probe batch at step 0 (``histograms.jsonl``), which is
the same quantity on fewer samples. Mean over seeds, error bars ±1 std.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from initsweep.report.aggregate import scheme_groups
from initsweep.report.jobs import Job, Study
from initsweep.report.section import Options, Section, colors, figure_html, plain, save
from initsweep.summary import aggregate


def profile(job: Job) -> tuple[list[str], list[list[float]], str] | None:
    """(layer names by depth, per-layer stds over seeds, source) or None."""
    per_seed = [r.get("layers") or [] for r in (job.init or {}).get("seeds", [])]
    if per_seed and all(all("preact_std" in layer for layer in ls) and ls for ls in per_seed):
        names = [layer.get("name", str(i)) for i, layer in enumerate(per_seed[0])]
        values = [
            [ls[i]["preact_std"] for ls in per_seed if i < len(ls)] for i in range(len(names))
        ]
        return names, values, "init.json"
    acts = [h for h in job.init_histograms if h.get("kind") == "activation"]
    if not acts:
        return None
    names = list(dict.fromkeys(h["name"] for h in acts))  # forward order, as recorded
    values = [[h["std"] for h in acts if h["name"] == n] for n in names]
    return names, values, "probe batch"


def section(study: Study, out: Path, options: Options) -> Section | None:
    lines = [
        (label, p)
        for label, job in scheme_groups(study.jobs, study.varying)
        if (p := profile(job))
    ]
    if not lines:
        return None
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.subplots()
    for (label, (names, values, _)), color in zip(lines, colors(len(lines))):
        stats = [tuple(aggregate(v).values()) for v in values]
        depth = np.arange(1, len(names) + 1)
        mean = np.array([s[0] for s in stats])
        std = np.array([s[1] for s in stats])
        if not np.any(mean > 0):  # a log axis cannot show it: say so in the legend
            label += " (std 0 everywhere: off the log axis)"
        ax.errorbar(
            depth, mean, yerr=std, color=color, marker="o", ms=4, capsize=2, label=plain(label)
        )
    names = max((p[0] for _, p in lines), key=len)
    if len(names) <= 12:
        ticks = [plain(n) for n in names]
        ax.set_xticks(range(1, len(names) + 1), ticks, rotation=30, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("layer (depth)")
    ax.set_ylabel("pre-activation std (log scale)")
    ax.set_title("Signal propagation at init: pre-activation std by depth")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    path = save(fig, out / "signal_propagation.png")
    sources = sorted({p[2] for _, p in lines})
    caption = (
        "Std of each layer's pre-activations at step 0, mean over seeds (±1 std), one line per "
        f"scheme; source: {', '.join(sources)}. Flat: the signal is preserved through depth."
    )
    return Section("Signal propagation at init", figure_html(path, out, caption), [path])
