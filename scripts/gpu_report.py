"""The GPU check's one JSON file and one markdown table, from the files its parts wrote.

``scripts/gpu_check.sh`` runs the parts (``parts.jsonl``: each one's exit code and seconds) and
then this: ``gpu_check.json`` holds every part's result (the junit counts of the cuda tests,
the three benchmarks' JSON), ``gpu_check.md`` one row per part with its key numbers and
targets, then the benchmarks' own tables.

  python scripts/gpu_report.py outputs/gpu_check
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import bench  # scripts/bench.py, beside this script
import bench_seed_study
import bench_study


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def junit_counts(path: Path) -> dict | None:
    """Tests run, failed (errors included) and skipped, from pytest's ``--junitxml``."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    return {"passed": n["tests"] - n["failures"] - n["errors"] - n["skipped"],
            "failed": n["failures"] + n["errors"], "skipped": n["skipped"]}  # fmt: skip


def key_numbers(part: str, result: dict | None) -> str:
    """A row's summary of a part's result: what it measured against its targets."""
    if result is None:
        return "no result"
    if part == "tests":
        return f"{result['passed']} passed, {result['failed']} failed, {result['skipped']} skipped"
    if part == "bench":
        stack = ", ".join(
            f"{r['model']} M={r['m']} {r['speedup']:.2f}x" for r in result.get("stack", [])
        )
        targets = "; ".join(f"{k}: {v[0]}" for k, v in result["targets"].items())
        return f"stacked/sequential {stack or '-'}{'; ' + targets if targets else ''}"
    if part == "study":
        return "; ".join(
            f"{k} = {v[0]} ({'met' if v[1] else 'NOT met'} >= {result['target_values'][k]})"
            for k, v in result["targets"].items()
        )
    rows = [r for r in result["rows"] if "speedup" in r]
    gpu = result["device"].startswith("cuda")  # the target is a GPU's
    return "; ".join(
        f"stacked/sequential bf16 {'on' if r['amp'] else 'off'} = {r['speedup']:.2f}x "
        + (
            f"({'met' if r['speedup'] >= result['target'] else 'NOT met'} >= {result['target']})"
            if gpu
            else f"(a GPU's target: >= {result['target']})"
        )
        for r in rows
    )


def main(out: Path) -> int:
    parts = [json.loads(line) for line in (out / "parts.jsonl").read_text().splitlines()]
    results = {
        "tests": junit_counts(out / "tests.xml"),
        "bench": _load(out / "bench.json"),
        "study": _load(out / "study.json"),
        "seed_study": _load(out / "seed_study.json"),
    }
    lines = [
        "| part | exit | seconds | result |",
        "|---|---:|---:|---|",
    ]
    for p in parts:
        status = "ok" if p["rc"] == 0 else ("timed out" if p["rc"] == 124 else f"rc {p['rc']}")
        lines.append(
            f"| {p['part']} | {status} | {p['seconds']:.0f} | "
            f"{key_numbers(p['part'], results.get(p['part']))} |"
        )
    tables = {
        "bench": bench.table,
        "study": bench_study.table,
        "seed_study": bench_seed_study.table,
    }
    for name, render in tables.items():
        if results[name] is not None:
            lines += ["", f"### {name}", "", render(results[name])]
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    (out / "gpu_check.json").write_text(json.dumps({"parts": parts, **results}, indent=2))
    print("\n".join(lines))
    print(f"\nwrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")
    return 0 if all(p["rc"] == 0 for p in parts) else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
