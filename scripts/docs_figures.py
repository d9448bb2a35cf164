"""Make the tutorials' figures from the embedded twins, so the pages cannot go stale.

For each study preset ``initsweep/conf/experiment/<study>_twin.yaml`` this runs the twin's whole
sweep as a user would (``initsweep-train -m experiment=<study>_twin``), then ``initsweep-report``
on it, and copies every figure the report made to ``docs/assets/tutorials/<study>/``. It also
writes ``docs/_generated/tutorial-<study>.md``: the figures with captions, the report's terminal
table and how long the twin took, which ``docs/tutorials/<study>.md`` includes.

    python scripts/docs_figures.py                    # every twin (about a minute on 2 cores)
    python scripts/docs_figures.py --only lstm_forget_bias

Run it after a change that moves a study's numbers; commit the PNGs and the generated pages.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXPERIMENTS = REPO / "initsweep" / "conf" / "experiment"
ASSETS = REPO / "docs" / "assets" / "tutorials"
GENERATED = REPO / "docs" / "_generated"

# what each report figure shows (a figure the report adds later is shown with its file name)
CAPTIONS = {
    "curves.png": "Training and validation curves, mean ± std over seeds, one line per arm.",
    "loss_at_init.png": "Loss at step 0: every seed measured against the loss theory expects.",
    "weights_at_init.png": "Weight histograms at init against the scheme's theoretical density.",
    "weights_over_training.png": "Weight histograms of one seed per arm, one ridge per logged epoch.",
    "signal_propagation.png": "Pre-activation std by depth at init, every arm.",
    "finals.png": "Final metrics, each seed a point.",
    "forest.png": "Each arm against the baseline: ratio and interval over seeds (forest plot).",
    "search_seeds.png": "A search's trials across seeds.",
}


REPORT = "import sys; from initsweep.cli import report; report(sys.argv[1:])"  # initsweep-report


def studies() -> list[str]:
    """The studies that have an embedded twin and a tutorial page, by name (without ``_twin``);
    the residual checks' twins are tested, and their page draws from full runs
    (``scripts/residual_checks.py``)."""
    twins = (p.stem.removesuffix("_twin") for p in EXPERIMENTS.glob("*_twin.yaml"))
    return sorted(s for s in twins if (REPO / "docs" / "tutorials" / f"{s}.md").exists())


def run(*args: str) -> subprocess.CompletedProcess:
    res = subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, check=False
    )
    if res.returncode != 0:
        sys.exit(f"docs_figures: {' '.join(args)} failed:\n{res.stderr[-3000:]}")
    return res


def make(study: str, work: Path) -> float:
    """Run ``study``'s twin and its report; copy the figures; write the generated page."""
    sweep = work / study
    start = time.perf_counter()
    run(
        "-m",
        "initsweep",
        "-m",
        f"experiment={study}_twin",
        "trainer.progress=false",
        f"hydra.sweep.dir={sweep}",
    )
    seconds = time.perf_counter() - start
    report = run("-c", REPORT, str(sweep)).stdout
    dest = ASSETS / study
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    figures = sorted((sweep / "report").glob("*.png"))
    for png in figures:
        shutil.copy2(png, dest / png.name)
    lines = [
        f"<!-- made by scripts/docs_figures.py from experiment={study}_twin; do not edit -->",
        "",
        f"The twin's whole sweep took {seconds:.0f} s on the machine that made these figures "
        "(2 shared CPU cores).",
        "",
    ]
    for png in figures:
        caption = CAPTIONS.get(png.name, png.name)
        lines += [f"![{caption}](../assets/tutorials/{study}/{png.name})", "", f"*{caption}*", ""]
    table = report.split("\nreport: ")[0].rstrip()
    lines += ["What `initsweep-report` printed:", "", "```text", table, "```", ""]
    GENERATED.mkdir(parents=True, exist_ok=True)
    (GENERATED / f"tutorial-{study}.md").write_text("\n".join(lines))
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=studies(), help="one study (repeat)")
    args = parser.parse_args(argv)
    total = 0.0
    with tempfile.TemporaryDirectory(prefix="docs-figures-") as tmp:
        for study in args.only or studies():
            seconds = make(study, Path(tmp))
            total += seconds
            print(f"{study}: {seconds:.0f} s", flush=True)
    print(f"all: {total:.0f} s")


if __name__ == "__main__":
    main()
