"""``initsweep-report`` on a small real multirun: files, table values, images, partial sweeps."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from scipy import integrate

from initsweep.cli import report
from initsweep.report import make_report
from initsweep.report.densities import density
from initsweep.report.init_histograms import mismatch
from tests.conftest import run_cli

PLOTS = [
    "curves.png",
    "loss_at_init.png",
    "weights_at_init.png",
    "signal_propagation.png",
    "finals.png",
]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A real 2 x 2 multirun (weight scheme x bias rule), two seeds, two epochs."""
    root = tmp_path_factory.mktemp("sweep")
    res = run_cli(
        "-m",
        "init=kaiming_normal,pytorch_default",
        "bias=zeros,prior",
        "seeds=[0,1]",
        "model.hidden=[32,16]",
        "trainer.epochs=2",
        "trainer.progress=false",
        f"hydra.sweep.dir={root}",
    )
    assert res.returncode == 0, res.stderr
    return root


@pytest.fixture(scope="module")
def built(sweep, tmp_path_factory):
    """The report of the sweep, through the console entry point, and what it printed."""
    out = tmp_path_factory.mktemp("report")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        report([str(sweep), "--out", str(out)])
    return out, buf.getvalue()


def assert_readable_png(path: Path) -> None:
    """A real PNG, big enough to read, and not blank."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    assert path.stat().st_size > 15_000, path
    img = imread(path)
    assert img.shape[0] > 300 and img.shape[1] > 400, (path, img.shape)
    assert img[..., :3].std() > 0.05, path  # something is drawn


@pytest.mark.slow
def test_report_writes_table_plots_and_page(built):
    out, printed = built
    for name in ["index.html", "table.md", "table.csv", *PLOTS]:
        assert (out / name).exists(), name
    for name in PLOTS:
        assert_readable_png(out / name)
    page = (out / "index.html").read_text()
    # one page with every plot, by relative link, and nothing fetched from a network
    for name in PLOTS:
        assert f'src="{name}"' in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "<table>" in page
    # the terminal shows the table and where the page is
    assert "| init" in printed and "kaiming_normal" in printed
    assert f"report: {(out / 'index.html').resolve()}" in printed


@pytest.mark.slow
def test_table_values_equal_the_job_summaries(built, sweep):
    out, _ = built
    rows = list(csv.DictReader(open(out / "table.csv")))
    assert len(rows) == 4
    # only the overrides that vary are columns: init and bias, not trainer.epochs
    assert {"init", "bias"} <= set(rows[0]) and "trainer.epochs" not in rows[0]
    for row in rows:
        summary = json.loads((sweep / row["job"] / "summary.json").read_text())
        assert row["init"] == summary["config"]["init"]["name"]
        assert row["bias"] == summary["config"]["bias"]["name"]
        assert row["status"] == "finished"
        assert int(row["n_diverged"]) == summary["n_diverged"]
        for metric, agg in summary["aggregate"].items():
            assert float(row[f"{metric} mean"]) == agg["mean"]
            assert float(row[f"{metric} std"]) == agg["std"]
            assert int(row[f"{metric} n"]) == agg["n"]
        init = json.loads((sweep / row["job"] / "init.json").read_text())
        measured = [s["measured_loss"] for s in init["seeds"]]
        assert float(row["loss@0 measured mean"]) == pytest.approx(np.mean(measured))
        assert float(row["loss@0 expected"]) == pytest.approx(init["seeds"][0]["expected_loss"])
    md = (out / "table.md").read_text()
    first = json.loads((sweep / "0" / "summary.json").read_text())["aggregate"]["val/loss"]
    assert f"{first['mean']:.4f} ± {first['std']:.4f} ({first['n']})" in md


@pytest.mark.slow
def test_partial_sweep_is_reported_not_crashed_on(sweep, tmp_path):
    root = tmp_path / "partial"
    shutil.copytree(sweep, root, ignore=shutil.ignore_patterns("report"))
    (root / "0" / "summary.json").unlink()  # still running
    with open(root / "1" / "metrics.jsonl", "a") as f:
        f.write('{"seed": 0, "step": 99, "train/lo')  # a writer killed mid-line
    (root / "2" / "summary.json").write_text('{"status": "fini')  # a corrupt summary
    (root / "4" / ".hydra").mkdir(parents=True)  # failed before training: only .hydra/
    (root / "4" / ".hydra" / "overrides.yaml").write_text("- init=zeros\n- bias=zeros\n")
    result = make_report(root)
    status = {j.name: j.status for j in result.study.jobs}
    assert status == {
        "0": "incomplete",
        "1": "finished",
        "2": "corrupt",
        "3": "finished",
        "4": "empty",
    }
    rows = {r["job"]: r for r in csv.DictReader(open(root / "report" / "table.csv"))}
    assert rows["0"]["val/loss mean"] == "" and "no summary.json" in rows["0"]["detail"]
    assert "summary.json unreadable" in rows["2"]["detail"]
    page = (root / "report" / "index.html").read_text()
    assert "incomplete" in page and "corrupt" in page
    # the finished jobs still get every plot
    for name in PLOTS:
        assert_readable_png(root / "report" / name)


def test_empty_dir_gives_a_page_that_says_so(tmp_path):
    result = make_report(tmp_path)
    assert result.study.jobs == []
    assert "No job directories" in result.index.read_text()


def test_missing_dir_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        report([str(tmp_path / "nope")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "nope" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "kind, shape",
    [("uniform", None), ("normal", None), ("truncated", None), ("orthogonal", [20, 50])],
)
def test_theoretical_densities_integrate_to_one_with_the_stated_std(kind, shape):
    mean, std = 0.1, 0.05
    pdf, _ = density(kind, mean, std, shape)
    lo, hi = mean - 12 * std, mean + 12 * std
    points = [mean - math.sqrt(3) * std, mean + math.sqrt(3) * std]  # the uniform's edges
    mass = integrate.quad(pdf, lo, hi, points=points, limit=200)[0]
    m1 = integrate.quad(lambda x: x * pdf(x), lo, hi, points=points, limit=200)[0]
    m2 = integrate.quad(lambda x: (x - m1) ** 2 * pdf(x), lo, hi, points=points, limit=200)[0]
    assert mass == pytest.approx(1, abs=1e-6)
    assert m1 == pytest.approx(mean, abs=1e-6)
    assert math.sqrt(m2) == pytest.approx(std, rel=1e-5)


def test_std_mismatch_flags_real_errors_not_sampling_noise():
    # 12% off (a std before truncation used as the one after) is flagged in a large layer
    assert mismatch(0.05 / 0.8796, 0.05, 512 * 512)[1]
    # 4% off in a 10 x 16 layer is within three standard errors (3/sqrt(320) = 17%)
    assert not mismatch(0.052, 0.05, 160)[1]
    # 1% off is never flagged
    assert not mismatch(0.0505, 0.05, 10**7)[1]
