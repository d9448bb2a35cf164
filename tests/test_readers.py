"""Files other programs read: strict JSON in summary.json, a report that writes only where it
should, study files inside the outputs, and report sections that survive odd job files."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from initsweep.errors import ConfigError
from initsweep.job import run
from initsweep.report import make_report
from tests.conftest import run_cli

QUICK = ["trainer.epochs=1", "trainer.progress=false", "dataset.limit=200", "seeds=[0,1]"]
EXPLODE = ["experiment=deep_linear_explode_twin", "init=identity", "init.scale=1.5"]


def _strict(text: str):
    """JSON as jq and JavaScript read it: no NaN, no Infinity."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_summary_json_holds_null_where_a_number_is_not_finite(make_cfg, tmp_path):
    cfg = make_cfg(*EXPLODE, *QUICK[:2], "seeds=[0,1]")
    assert math.isnan(run(cfg))  # every seed diverged: the objective is NaN
    text = (tmp_path / "summary.json").read_text()
    summary = _strict(text)
    assert summary["objective"]["value"] is None
    assert summary["aggregate"]["train/loss"]["mean"] is None
    if shutil.which("jq"):
        jq = subprocess.run(["jq", ".objective.value"], input=text, capture_output=True, text=True)
        assert jq.returncode == 0 and jq.stdout.strip() == "null"
    # the readers take null for NaN: a re-run returns the stored objective, the report shows it
    assert math.isnan(run(cfg))
    job = make_report(tmp_path).study.jobs[0]
    assert math.isnan(job.summary["objective"]["value"])
    assert math.isnan(job.summary["aggregate"]["train/loss"]["mean"])


def test_the_report_does_not_write_through_a_report_symlink(make_cfg, tmp_path):
    run(make_cfg(*QUICK, output_dir=tmp_path / "sweep" / "0"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "index.html").write_text("someone else's page")
    (tmp_path / "sweep" / "report").symlink_to(elsewhere)
    with pytest.raises(ConfigError, match=r"report is a symbolic link \(to .*elsewhere\)"):
        make_report(tmp_path / "sweep")
    assert [p.name for p in elsewhere.iterdir()] == ["index.html"]
    assert (elsewhere / "index.html").read_text() == "someone else's page"


def test_a_link_inside_the_report_dir_is_replaced_not_followed(make_cfg, tmp_path):
    run(make_cfg(*QUICK, output_dir=tmp_path / "sweep" / "0"))
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "sweep" / "report").mkdir()
    (tmp_path / "sweep" / "report" / "index.html").symlink_to(victim)
    result = make_report(tmp_path / "sweep")
    assert victim.read_text() == "keep me"
    assert not result.index.is_symlink() and "<html" in result.index.read_text()


@pytest.mark.slow
def test_a_study_name_cannot_write_outside_the_outputs(tmp_path):
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    res = run_cli("-m", "search=gain", "name=../../../x", *QUICK, cwd=work)
    assert res.returncode == 2
    assert (
        res.stderr.strip()
        .splitlines()[-1]
        .startswith("initsweep: error: name='../../../x' is invalid: a study name is a plain name")
    )
    assert not list(tmp_path.rglob("*.db"))
    assert not (work / "outputs").exists()


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ""])
def test_a_job_refuses_a_path_as_its_name(make_cfg, name):
    with pytest.raises(ConfigError, match="a study name is a plain name"):
        run(make_cfg(*QUICK, f"name='{name}'"))


def test_report_sections_survive_dollars_empty_metrics_and_non_object_lines(make_cfg, tmp_path):
    sweep = tmp_path / "sweep"
    for i, lr in enumerate([0.1, 0.05, 0.02]):
        run(make_cfg(*QUICK, f"optimizer.lr={lr}", output_dir=sweep / str(i)))
        (sweep / str(i) / ".hydra").mkdir()
        # a `$` pair that matplotlib's mathtext cannot parse, in every job's label
        (sweep / str(i) / ".hydra" / "overrides.yaml").write_text(
            f"- optimizer.lr={lr}\n- name='cost$\\\\x{i}^$y'\n"
        )
    (sweep / "0" / "metrics.jsonl").write_text("")  # a finished job whose metrics are gone
    with open(sweep / "1" / "metrics.jsonl", "a") as f:
        f.write('[1, 2]\n3\n"text"\nnull\n')  # JSON lines that are not objects
    result = make_report(sweep)
    page = result.index.read_text()
    assert "This section failed" not in page
    assert {j.name: j.status for j in result.study.jobs} == dict.fromkeys("012", "finished")
    for figure in ("curves.png", "loss_at_init.png", "finals.png"):  # the labelled plots
        assert (result.index.parent / figure).exists()


def test_a_failed_jobs_status_explains_itself_in_the_report(make_cfg, tmp_path):
    from initsweep.files import write_json_atomic

    run(make_cfg(*QUICK, output_dir=tmp_path / "sweep" / "0"))
    (tmp_path / "sweep" / "1" / ".hydra").mkdir(parents=True)
    (tmp_path / "sweep" / "1" / ".hydra" / "overrides.yaml").write_text("- optimizer.lr=-1\n")
    error = "optimizer.lr=-1 is invalid: must be a number > 0"
    write_json_atomic(
        tmp_path / "sweep" / "1" / "status.json", {"status": "failed", "error": error}
    )
    job = {j.name: j for j in make_report(tmp_path / "sweep").study.jobs}["1"]
    assert job.status == "empty" and error in job.detail


def test_a_metrics_file_of_other_json_is_read_as_no_records(tmp_path):
    from initsweep.files import read_jsonl

    (tmp_path / "m.jsonl").write_text('{"step": 1}\n[1]\n2\n{"step": 2}\n{"ste')
    assert read_jsonl(tmp_path / "m.jsonl") == [{"step": 1}, {"step": 2}]


def test_every_json_file_a_job_writes_is_strict_json(make_cfg, tmp_path):
    run(make_cfg(*EXPLODE, *QUICK[:2], "seeds=[0,1]"))
    for name in ("summary.json", "init.json"):
        _strict((tmp_path / name).read_text())
    assert Path(tmp_path / "metrics.jsonl").exists()
