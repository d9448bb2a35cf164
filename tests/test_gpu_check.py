"""The one-shot GPU check runs end to end: its CPU dry run passes every part and writes the one
JSON file and the one markdown table the lead reads after a GPU session."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_the_gpu_check_dry_run_on_a_cpu(tmp_path):
    done = subprocess.run(
        ["bash", "scripts/gpu_check.sh", "--device", "cpu", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [p["part"] for p in result["parts"]] == ["tests", "bench", "study", "seed_study"]
    assert all(p["rc"] == 0 for p in result["parts"])
    # the cuda tests are collected and skip on a CPU; every benchmark wrote its numbers
    assert result["tests"]["failed"] == 0 and result["tests"]["skipped"] >= 1
    assert result["bench"]["device"] == "cpu" and result["bench"]["stack"]
    assert set(result["study"]["ratios"]) == {"(c)/(a)", "(c)/(b)"}
    assert [r["stacked"] for r in result["seed_study"]["rows"]] == [False, True]
    table = (tmp_path / "gpu_check.md").read_text()
    assert table.startswith("| part | exit | seconds | result |")
    assert "| seed_study | ok |" in table and "### seed_study" in table
