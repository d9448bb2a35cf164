"""Weight histograms at init, one row per scheme and one column per layer, against theory.

Each panel is the step-0 histogram of one weight (``histograms.jsonl``, first seed of the job)
as a density, the scheme's theoretical density over it (:mod:`initsweep.report.densities`, with
the mean, std and family ``init.json`` records per layer: ``theory_mean``, ``theory_std``,
``theory_family``; no overlay where they are absent), and the empirical std next to the
theoretical one. A mismatch is flagged when it exceeds both 2% and three standard errors of a sample std,
3/sqrt(2n) for n entries (so small layers are not flagged for sampling noise); it catches the
truncation, sqrt(5) and gain mistakes of init code.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from initsweep.report.aggregate import scheme_groups
from initsweep.report.densities import density
from initsweep.report.jobs import Job, Study
from initsweep.report.section import Options, Section, figure_html, note_html, plain, save

MAX_LAYERS = 6  # deeper nets: first, last and evenly spaced layers between


def pick(names: list[str], k: int = MAX_LAYERS) -> list[str]:
    if len(names) <= k:
        return names
    return [names[i] for i in np.linspace(0, len(names) - 1, k).round().astype(int)]


def mismatch(empirical: float, theory: float, n: int) -> tuple[float, bool]:
    """Relative difference of the stds and whether it is beyond 2% and sampling noise."""
    rel = empirical / theory - 1
    return rel, abs(rel) > max(0.02, 3 / math.sqrt(2 * max(n, 1)))


def rebin(counts: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge neighbouring bins of a small tensor's histogram down to about sqrt(n) bins (at least
    8), so that a few hundred weights do not look like noise."""
    k = 1
    target = max(8.0, math.sqrt(counts.sum()))
    while len(counts) % (2 * k) == 0 and len(counts) / (2 * k) >= target:
        k *= 2
    return counts.reshape(-1, k).sum(1), edges[::k]


def _weights_at_init(job: Job) -> tuple[int | None, list[dict]]:
    hists = [h for h in job.init_histograms if h.get("kind") == "weight" and h.get("counts")]
    if not hists:
        return None, []
    seed = job.seeds[0] if job.seeds else hists[0]["seed"]
    return seed, [h for h in hists if h["seed"] == seed]


def _theory(job: Job, seed: int) -> dict[str, dict]:
    """Per parameter: the init.json layer statistics merged with its init assignment."""
    for row in (job.init or {}).get("seeds", []):
        if row.get("seed") == seed:
            out = {a["param"]: dict(a) for a in row.get("assignment", []) if "param" in a}
            for layer in row.get("layers") or []:
                param = layer.get("param") or f"{layer.get('name')}.weight"
                out[param] = {**out.get(param, {}), **layer}
            return out
    return {}


def _panel(ax, h: dict, info: dict) -> bool:
    """One histogram with its theory; returns whether a theoretical density was drawn."""
    counts, edges = rebin(np.asarray(h["counts"], float), np.asarray(h["edges"], float))
    widths = np.diff(edges)
    ax.stairs(counts / (counts.sum() * widths), edges, fill=True, color="tab:blue", alpha=0.45)
    n = math.prod(h["shape"])
    text, color, drew = f"std {h['std']:.4g}", "black", False
    sigma = info.get("theory_std")
    if isinstance(sigma, (int, float)) and sigma > 0:
        rel, flagged = mismatch(h["std"], sigma, n)
        text += f"\ntheory {sigma:.4g} ({rel:+.1%}){'  MISMATCH' if flagged else ''}"
        color = "tab:red" if flagged else "black"
        mean, kind = info.get("theory_mean"), info.get("theory_family")
        d = None if mean is None or kind is None else density(kind, mean, float(sigma), h["shape"])
        if d is not None:
            pdf, label = d
            pad = 0.1 * (edges[-1] - edges[0])
            x = np.linspace(edges[0] - pad, edges[-1] + pad, 400)
            ax.plot(x, pdf(x), color="black", lw=1.4)
            text += f"\n{label}"
            drew = True
    box = {"facecolor": "white", "alpha": 0.8, "lw": 0}
    ax.text(0.02, 0.97, text, transform=ax.transAxes, va="top", fontsize=7, color=color, bbox=box)
    ax.set_title(plain(f"{h['name']} {tuple(h['shape'])}"), fontsize=8)
    ax.tick_params(labelsize=7)
    return drew


def section(study: Study, out: Path, options: Options) -> Section | None:
    rows = []
    for label, job in scheme_groups(study.jobs, study.varying):
        seed, hists = _weights_at_init(job)
        if hists:
            by_name = {h["name"]: h for h in hists}
            rows.append(
                (label, seed, [by_name[n] for n in pick(list(by_name))], _theory(job, seed))
            )
    if not rows:
        note = "No weight histograms at init: the jobs have no histograms.jsonl."
        return Section("Weights at init", note_html(note))
    ncols = max(len(r[2]) for r in rows)
    fig = Figure(figsize=(3.1 * ncols + 0.8, 2.5 * len(rows) + 1.0), layout="constrained")
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    any_theory = False
    for r, (label, seed, hists, theory) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            if c >= len(hists):
                ax.set_visible(False)
                continue
            any_theory |= _panel(ax, hists[c], theory.get(hists[c]["name"], {}))
            if c == 0:
                ax.set_ylabel(plain(f"{label}\n(seed {seed})\ndensity"), fontsize=8)
            if r == len(rows) - 1:
                ax.set_xlabel("weight value", fontsize=8)
    fig.suptitle(
        "Weight histograms at init, per scheme and layer, against the theoretical density"
    )
    handles = [Patch(color="tab:blue", alpha=0.45), Line2D([], [], color="black", lw=1.4)]
    fig.legend(
        handles,
        ["empirical (step 0)", "theoretical density"],
        loc="outside lower center",
        ncol=2,
        fontsize="small",
    )
    path = save(fig, out / "weights_at_init.png")
    caption = (
        "Each weight at step 0 as a density, with the empirical std against the theoretical one "
        "(red: off by more than 2% and 3 standard errors)."
    )
    if not any_theory:
        caption += " No theoretical density: init.json has no layers[].theory_std for these jobs."
    return Section("Weights at init", figure_html(path, out, caption), [path])
