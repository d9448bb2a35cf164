"""The performance page's tables are generated from the committed benchmark JSON, and are up to
date with it (scripts/bench_docs.py, the last step of ``make bench``)."""

from __future__ import annotations

import shutil
import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import bench_docs  # noqa: E402  (scripts/bench_docs.py)

DOCS = REPO / "docs"
PAGES = ("performance-step.md", "performance-stack.md", "performance-study.md", "gpu-check.md")


def test_the_committed_tables_are_generated_from_the_committed_json(tmp_path):
    source = tmp_path / "run"
    shutil.copytree(DOCS / "assets" / "performance", source)
    written = bench_docs.write(source, docs=tmp_path / "docs")
    assert sorted(p.name for p in written) == sorted(PAGES)
    for name in PAGES:  # regenerate: the pages on the site are exactly what the JSON gives
        want = (DOCS / "_generated" / name).read_text()
        assert (tmp_path / "docs" / "_generated" / name).read_text() == want, name
    step = (tmp_path / "docs" / "_generated" / "performance-step.md").read_text()
    assert step.startswith("*From `docs/assets/performance/bench.json`: models ")
    assert "| model | M | variant | samples/s (median) |" in step


def test_a_smoke_run_is_marked_not_a_measurement():
    quick = {"quick": True, "device": "cpu", "threads": 2, "torch": "x", "foreign_cpu": {}}
    quick["seconds"] = {"a": [1.0]}
    quick["foreign_cpu"] = {"a": [0.0]}
    assert 'warning "Not a measurement"' in bench_docs.header(quick, "study.json")
    quiet = {**quick, "quick": False}
    assert "warning" not in bench_docs.header(quiet, "study.json")
    busy = {**quiet, "foreign_cpu": {"a": [0.5]}}
    assert "taken on a busy machine" in bench_docs.header(busy, "study.json")
