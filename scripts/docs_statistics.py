"""Make the figures and the verdict table of docs/explanation/statistics.md from a real grid.

It runs, as a user would, the 3 × 2 grid the page describes on embedded data (the imbalanced
digits twin, three weight schemes × two bias rules, four seeds per arm), then
``initsweep-report`` on it, copies ``forest.png`` and ``curves.png`` to
``docs/assets/statistics/`` and writes the report's comparison (what the terminal prints) to
``docs/_generated/statistics-grid.md``, which the page includes.

    python scripts/docs_statistics.py          # about a minute on 2 busy cores

Run it after a change to the report's comparison; commit the PNGs and the generated page.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "docs" / "assets" / "statistics"
GENERATED = REPO / "docs" / "_generated" / "statistics-grid.md"
GRID = [
    "-m",
    "experiment=bias_prior_imbalanced_twin",
    "init=kaiming_normal,xavier_uniform,pytorch_default",
    "bias=zeros,prior",
    "seeds=[0,1,2,3]",
    "trainer.progress=false",
]
REPORT = "import sys; from initsweep.cli import report; report(sys.argv[1:])"  # initsweep-report


def run(*args: str) -> str:
    res = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"docs_statistics: {' '.join(args)} failed:\n{res.stderr[-3000:]}")
    return res.stdout


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sweep, out = Path(tmp) / "sweep", Path(tmp) / "report"
        run("-m", "initsweep", *GRID, f"hydra.sweep.dir={sweep}")
        printed = run("-c", REPORT, str(sweep), "--out", str(out))
        ASSETS.mkdir(parents=True, exist_ok=True)
        for name in ("forest.png", "curves.png"):
            shutil.copy(out / name, ASSETS / name)
    # the comparison as the terminal shows it: from its title to the report's link
    text = printed[printed.index("Is the difference real?") :].split("\nreport: ")[0].strip()
    body = text.removeprefix("Is the difference real?").strip()
    GENERATED.parent.mkdir(parents=True, exist_ok=True)
    GENERATED.write_text(
        "<!-- made by scripts/docs_statistics.py: do not edit -->\n\n"
        f"```text\n$ initsweep-report outputs/multirun/<date>/<time>\n{body}\n```\n"
    )
    print(f"wrote {GENERATED.relative_to(REPO)} and {ASSETS.relative_to(REPO)}/*.png")


if __name__ == "__main__":
    main()
