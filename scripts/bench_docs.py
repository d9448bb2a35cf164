"""The performance page's tables, generated from the benchmarks' JSON (never pasted).

Copies ``bench.json`` and ``study.json`` of a ``make bench`` run (``--from``, default
``outputs/bench``) into ``docs/assets/performance/`` (the measurement the docs show, committed)
and writes from them ``docs/_generated/performance-step.md`` (scripts/bench.py's per-step
table), ``performance-stack.md`` (its stacked-against-sequential table and what ``auto``
picks) and ``performance-study.md`` (scripts/bench_study.py's whole study), each headed by the
run's machine, torch, rounds and load. A run that is a smoke test (``--quick``) or that other
processes disturbed (median foreign CPU above 15 %) is marked as such on the page.

A GPU check's dir (``scripts/gpu_check.sh``: it holds ``gpu_check.json``) goes to
``docs/assets/gpu/`` and ``docs/_generated/gpu-check.md`` instead (docs/how-to/gpu.md).

  python scripts/bench_docs.py                    # after make bench (its last step)
  python scripts/bench_docs.py --from outputs/gpu_check
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

import bench  # scripts/bench.py, beside this script
import bench_study
from bench_stack import stack_table

REPO = Path(__file__).resolve().parent.parent
BUSY = 0.15  # median foreign CPU above which a run is not a quiet measurement


def _foreign(result: dict) -> float:
    if "rows" in result:
        return statistics.median(r["foreign_cpu"] for r in result["rows"])
    return statistics.median(v for vs in result["foreign_cpu"].values() for v in vs)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def header(result: dict, name: str) -> str:
    """Which run the table comes from, and a warning when it is not a quiet measurement."""
    rounds = result["rows"][0]["rounds"] if "rows" in result else len(result["seconds"]["a"])
    cpu_clock = result.get("clock") == "cpu"  # one thread's CPU seconds: load does not count
    models = dict.fromkeys(r["model"] for r in result.get("rows", []))
    line = (
        f"*From `docs/assets/performance/{name}`: "
        + (f"models {', '.join(models)}; " if models else "")
        + f"device {result['device']}, {_count(result['threads'], 'thread')}, "
        f"torch {result['torch']}, {_count(rounds, 'interleaved round')}, "
        + ("timed in one thread's CPU seconds (`--clock cpu`).*" if cpu_clock else
           f"median foreign CPU {_foreign(result):.0%}.*")
    )  # fmt: skip
    busy = _foreign(result) > BUSY and not cpu_clock
    if result.get("quick") or busy:
        why = "a smoke test (--quick)" if result.get("quick") else "taken on a busy machine"
        line += (
            f'\n\n!!! warning "Not a measurement"\n    This run was {why}: its numbers say '
            "that the script works, not how fast anything is. `make bench` on a quiet machine "
            "replaces them."
        )
    return line


def gpu_page(source: Path, docs: Path) -> str:
    """The GPU check's table (``gpu_check.md``), or what to do while none is recorded."""
    assets = docs / "assets" / "gpu"
    if (source / "gpu_check.json").exists() and source.resolve() != assets.resolve():
        assets.mkdir(parents=True, exist_ok=True)
        for name in ("gpu_check.json", "gpu_check.md"):
            shutil.copyfile(source / name, assets / name)
    if not (assets / "gpu_check.md").exists():
        return (
            "*No GPU run is recorded yet: the check was built on a machine without one. "
            "Run `scripts/gpu_check.sh` on a GPU, then the command below.*\n"
        )
    result = json.loads((assets / "gpu_check.json").read_text())
    gpu = (result.get("seed_study") or {}).get("gpu") or "a GPU"
    head = f"*From `docs/assets/gpu/gpu_check.json`: {gpu}.*\n\n"
    return head + (assets / "gpu_check.md").read_text()


def write(source: Path, docs: Path = REPO / "docs") -> list[Path]:
    """Copy a run's JSON from ``source`` into ``docs/assets/`` and regenerate the tables in
    ``docs/_generated/`` from what is there; the files written."""
    assets, generated = docs / "assets" / "performance", docs / "_generated"
    assets.mkdir(parents=True, exist_ok=True)
    generated.mkdir(parents=True, exist_ok=True)
    (generated / "gpu-check.md").write_text(gpu_page(source, docs))
    if (source / "gpu_check.json").exists():  # a GPU check: not the CPU page's measurement
        return [generated / "gpu-check.md"]
    for name in ("bench.json", "study.json"):
        if (source / name).exists() and source.resolve() != assets.resolve():
            shutil.copyfile(source / name, assets / name)
    step = json.loads((assets / "bench.json").read_text())
    study = json.loads((assets / "study.json").read_text())
    pages = {
        "performance-step.md": (
            f"{header(step, 'bench.json')}\n\n{bench.table({**step, 'stack': []})}\n"
        ),
        "performance-stack.md": (
            f"{header(step, 'bench.json')}\n\n{stack_table(step['stack'])}\n"
            if step.get("stack")
            else "*No stacked-against-sequential rows in this run.*\n"
        ),
        "performance-study.md": f"{header(study, 'study.json')}\n\n{bench_study.table(study)}\n",
    }
    for name, text in pages.items():
        (generated / name).write_text(text)
    return [generated / name for name in (*pages, "gpu-check.md")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="source", type=Path, default=Path("outputs/bench"))
    args = parser.parse_args()
    for path in write(args.source):
        print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
