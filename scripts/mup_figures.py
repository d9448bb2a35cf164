"""Make the μP tutorial's figures and verdicts from the two published checks, run as a user would.

For each check this runs its preset's sweep through the CLI (``initsweep-probe -m
experiment=mup_coord_check``; ``initsweep-train -m experiment=mup_transfer
hydra/launcher=joblib``), then ``initsweep-report`` on it, copies the check's figure to
``docs/assets/tutorials/mup/`` and writes ``docs/_generated/tutorial-mup-<check>.md``: the
report's verdict lines and how long the sweep took, which ``docs/tutorials/mup.md`` includes.

    python scripts/mup_figures.py                              # both (transfer: ~1 h on 2 cores)
    python scripts/mup_figures.py --only coord
    python scripts/mup_figures.py --only transfer --sweep DIR  # report an existing sweep dir

Run it after a change that moves the checks' numbers; commit the PNGs and the generated pages.
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
ASSETS = REPO / "docs" / "assets" / "tutorials" / "mup"
GENERATED = REPO / "docs" / "_generated"
BIN = Path(sys.executable).parent

# check -> (console script and its arguments, the report's figure, its section's first line)
CHECKS = {
    "coord": (["initsweep-probe", "-m", "experiment=mup_coord_check"], "coord_check.png",
              "Coordinate check (TP V)"),
    "transfer": (["initsweep-train", "-m", "experiment=mup_transfer", "hydra/launcher=joblib"],
                 "mup_transfer.png", "μP transfer (TP V)"),
}  # fmt: skip


def run_sweep(args: list[str], sweep: Path) -> float:
    start = time.monotonic()
    cmd = [str(BIN / args[0]), *args[1:], f"hydra.sweep.dir={sweep}", "trainer.progress=false"]
    subprocess.run(cmd, cwd=REPO, check=True)
    return time.monotonic() - start


def section_text(report_text: str, first: str) -> str:
    """The check's lines of the report's terminal text: from its heading to the next blank."""
    lines = report_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    end = next(
        (
            i
            for i in range(start, len(lines))
            if not lines[i].strip() or lines[i].startswith("report: ")
        ),
        len(lines),
    )
    return "\n".join(lines[start:end])


def make(check: str, sweep: Path | None) -> None:
    args, figure, first = CHECKS[check]
    if sweep is None:
        sweep = Path(tempfile.mkdtemp(prefix=f"mup-{check}-"))
        took = run_sweep(args, sweep)
    else:  # from the sweep's own files: its config written first, each job's files last
        files = [p.stat().st_mtime for p in sweep.glob("*/*.json")]
        took = max(files) - (sweep / "multirun.yaml").stat().st_mtime if files else None
    report = subprocess.run(
        [str(BIN / "initsweep-report"), str(sweep)], cwd=REPO, check=True, capture_output=True,
        text=True,
    )  # fmt: skip
    ASSETS.mkdir(parents=True, exist_ok=True)
    shutil.copy(sweep / "report" / figure, ASSETS / figure)
    command = " ".join(args)
    timing = f", {took / 60:.0f} min here" if took is not None else ""
    page = (
        f"![{check}](../assets/tutorials/mup/{figure})\n\n"
        f"`{command}` ({timing.lstrip(', ') or 'timing not recorded'}); its report says:\n\n"
        f"```text\n{section_text(report.stdout, first)}\n```\n"
    )
    GENERATED.mkdir(parents=True, exist_ok=True)
    (GENERATED / f"tutorial-mup-{check}.md").write_text(page)
    print(f"{check}: {ASSETS / figure}, {GENERATED / f'tutorial-mup-{check}.md'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(CHECKS))
    parser.add_argument("--sweep", type=Path, help="report this sweep dir instead of running one")
    args = parser.parse_args()
    for check in [args.only] if args.only else list(CHECKS):
        make(check, args.sweep)


if __name__ == "__main__":
    main()
