"""Run the published checks of docs/tutorials/residual-init.md through the CLI; draw their figures.

    python scripts/residual_checks.py                                   # both checks
    python scripts/residual_checks.py --check residual_without_norm --runs /tmp/checks

Each check is its experiment preset, run as a user runs it (``initsweep-train -m
experiment=<check>``), then ``initsweep-report`` on the sweep (its table and verdicts, printed
here and written to ``<runs>/<check>/report``). The figure, ``docs/assets/residual-init/<check>.png``,
shows every seed's training loss by arm, from the jobs' ``metrics.jsonl``. ``--reuse`` skips a
check whose sweep already finished. ``--figure-only DIR`` draws the figure of a sweep dir.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from initsweep.data.text import pydoc_chars  # noqa: E402
from initsweep.report.jobs import load_study  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "docs" / "assets" / "residual-init"
CHECKS = {  # preset -> (the arm key, the panel key or None)
    "residual_without_norm": ("init", "model.depth"),
    "deep_post_ln": ("arm", None),
}
BIN = Path(sys.executable).parent


def run_check(check: str, runs: Path, reuse: bool) -> Path:
    sweep = runs / check
    done = sweep.is_dir() and all(
        (d / "summary.json").exists() for d in sweep.iterdir() if d.name.isdigit()
    )
    if not (reuse and done):
        cmd = [str(BIN / "initsweep-train"), "-m", f"experiment={check}"]
        subprocess.run([*cmd, "trainer.progress=false", f"hydra.sweep.dir={sweep}"], check=True)
    report = subprocess.run(
        [str(BIN / "initsweep-report"), str(sweep)], check=True, capture_output=True, text=True
    )
    print(report.stdout)
    return sweep


def _series(job, metric: str = "train/loss") -> dict[int, list[tuple[int, float]]]:
    out: dict[int, list[tuple[int, float]]] = {}
    for r in job.metrics:
        if metric in r and r[metric] is not None:
            out.setdefault(r["seed"], []).append((r["step"], float(r[metric])))
    return out


def unigram_entropy(dataset: dict) -> float:
    """The training loss of predicting the training split's character frequencies everywhere."""
    bundle = pydoc_chars(block_size=dataset["block_size"], limit=dataset["limit"])
    p = bundle.class_prior[bundle.class_prior > 0]
    return float(-(p * p.log()).sum())


def draw(sweep: Path, check: str, out: Path) -> Path:
    """Every seed's train/loss by arm (one panel per value of the panel key); a seed that
    diverged ends in a cross; a loss above the plot is an arrow at the top with its value."""
    arm_key, panel_key = CHECKS[check]
    jobs = load_study(sweep).finished
    panels = sorted({j.overrides.get(panel_key) for j in jobs}, key=lambda v: float(v or 0))
    arms = list(dict.fromkeys(j.overrides[arm_key] for j in jobs))
    colors = dict(zip(arms, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        top = 0.0
        for job in (j for j in jobs if j.overrides.get(panel_key) == panel):
            arm = job.overrides[arm_key]
            gone = {s["seed"]: s["diverged_step"] for s in job.summary["seeds"] if s["diverged"]}
            series = _series(job)
            first = [v for pts in series.values() for s, v in pts if s == 0]
            label = f"{arm_key}={arm}"
            if not any(v < 1e3 for pts in series.values() for _, v in pts):  # all off the plot
                label += f" (loss at init {max(first):.2g}: off the plot)"
                ax.plot([], [], color=colors[arm], lw=1, label=label)
            for seed, pts in sorted(series.items()):
                pts = [(s, v) for s, v in pts if v == v and v < 1e3]  # finite and on the plot
                label = label if seed == min(series) else None
                if pts:
                    ax.plot(*zip(*pts), color=colors[arm], lw=1, alpha=0.85, label=label)
                    top = max(top, max(v for _, v in pts))
                if seed in gone:
                    ax.plot(gone[seed], 1.0, "x", color=colors[arm], ms=9, mew=2,
                            transform=ax.get_xaxis_transform(), clip_on=False, label=None)  # fmt: skip
        if check == "deep_post_ln":  # what predicting the character frequencies alone costs
            h = unigram_entropy(jobs[0].config["dataset"])
            ax.axhline(
                h, color="0.4", ls="--", lw=1, label=f"character frequencies alone: {h:.3f}"
            )
        bottom, top_ = ax.get_ylim()
        if top_ / max(bottom, 1e-9) > 10:  # a decade or more: log scale
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("step")
        ax.set_ylabel("train loss (each seed)")
        ax.set_ylim(top=min(ax.get_ylim()[1], 10.0))
        ax.set_title(f"{panel_key}={panel}" if panel_key else check, pad=14)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"{check}: x = a seed that diverged (at that step)", fontsize=10)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{check}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", choices=sorted(CHECKS), action="append")
    p.add_argument("--runs", type=Path, default=REPO / "outputs" / "residual-checks")
    p.add_argument("--out", type=Path, default=ASSETS)
    p.add_argument("--reuse", action="store_true", help="keep a finished sweep, only report")
    p.add_argument("--figure-only", type=Path, help="a sweep dir: draw its figure, run nothing")
    args = p.parse_args(argv)
    for check in args.check or sorted(CHECKS):
        sweep = args.figure_only or run_check(check, args.runs, args.reuse)
        print(f"figure: {draw(sweep, check, args.out)}")


if __name__ == "__main__":
    main()
