"""``initsweep-report`` on a small real multirun: files, table values, images, partial sweeps."""

from __future__ import annotations

import contextlib
import csv
import html
import io
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from matplotlib import cbook
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.mathtext import MathTextParser
from scipy import integrate

from initsweep.cli import report
from initsweep.report import make_report
from initsweep.report.densities import density
from initsweep.report.init_histograms import mismatch
from initsweep.report.section import plain
from tests.conftest import run_cli

PLOTS = [
    "curves.png",
    "loss_at_init.png",
    "weights_at_init.png",
    "signal_propagation.png",
    "finals.png",
    "weights_over_training.png",
    "forest.png",
]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A real 2 x 2 multirun (weight scheme x bias rule), three seeds, two epochs."""
    root = tmp_path_factory.mktemp("sweep")
    res = run_cli(
        "-m",
        "init=kaiming_normal,pytorch_default",
        "bias=zeros,prior",
        "seeds=[0,1,2]",
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
    assert "<table>" in page and '<table class="verdicts">' in page
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
    assert f"| {first['mean']:.4g} ± {first['std']:.2g} " in md  # every seed has a value: no n


@pytest.fixture(scope="module")
def figures(sweep, tmp_path_factory):
    """Every figure the report saves, drawn (savefig draws every text), by file name."""
    drawn = {}
    original = Figure.savefig

    def keep(fig, path, *args, **kwargs):
        original(fig, path, *args, **kwargs)
        drawn[Path(path).name] = fig

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Figure, "savefig", keep)
        make_report(sweep, tmp_path_factory.mktemp("figures"))
    return drawn


def tick_labels(fig: Figure) -> list:
    """The non-empty tick labels, major and minor, of every visible axis of ``fig``."""
    return [
        t for ax in fig.axes if ax.get_visible() for axis in (ax.xaxis, ax.yaxis)
        for t in axis.get_ticklabels(which="both") if t.get_text()
    ]  # fmt: skip


@pytest.mark.slow
def test_every_figure_renders_its_tick_labels_as_they_read(figures):
    assert set(PLOTS) <= set(figures)
    parser = MathTextParser("path")
    math_labels = 0
    for name, fig in figures.items():
        labels = tick_labels(fig)
        assert labels, name  # every figure has readable ticks
        for t in labels:
            text = t.get_text()
            if "\\mathdefault" in text:  # matplotlib's own 10^0, 2×10^-1: drawn as math
                assert t.get_parse_math() and cbook.is_math_text(text), (name, text)
                parser.parse(text)  # and valid mathtext, not the raw string on the page
                math_labels += 1
    # the log axis of signal_propagation.png at least reads 10^-1, 10^0
    log_axes = [ax for ax in figures["signal_propagation.png"].axes if ax.get_yscale() == "log"]
    assert log_axes and any("10^{" in t.get_text() for t in log_axes[0].get_yticklabels())
    assert math_labels >= 2


def test_a_dollar_in_a_label_is_shown_as_written():
    # an override such as name='cost$x^$y' is no mathtext once it goes through plain()
    assert not cbook.is_math_text(plain("name=cost$\\x0^$y"))
    assert cbook.is_math_text("$\\mathdefault{10^{0}}$")


@pytest.mark.slow
def test_a_grid_is_drawn_colour_by_one_factor_dashes_by_the_other(figures):
    ax = figures["curves.png"].axes[0]
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) > 1]
    assert len(lines) == 4  # 2 schemes x 2 bias rules
    assert len({line.get_color() for line in lines}) == 2
    assert {line.get_linestyle() for line in lines} == {"-", "--"}  # solid, dashed
    legend = [t.get_text() for t in figures["curves.png"].legends[0].get_texts()]
    assert {"init=kaiming_normal", "init=pytorch_default", "bias=zeros", "bias=prior"} <= set(
        legend
    )


def estimated_width(table: str) -> float:
    """Pixels a table takes at the page's font (.85em of 16 px, ~7.2 px a character, .6em
    padding a side): a header cell wraps at spaces, a body cell only in the verdict tables."""
    wraps = 'class="verdicts"' in table
    columns: dict[int, int] = {}
    for row in re.findall(r"<tr.*?</tr>", table, re.S):
        for i, (tag, cell) in enumerate(re.findall(r"<(t[hd])>(.*?)</t[hd]>", row, re.S)):
            text = html.unescape(re.sub(r"<.*?>", "", cell))
            chars = max(map(len, text.split() or [""])) if tag == "th" or wraps else len(text)
            columns[i] = max(columns.get(i, 0), chars)
    return sum(7.2 * c + 2 * 0.6 * 13.6 + 1 for c in columns.values())


@pytest.mark.slow
def test_every_table_of_the_page_fits_1400_px(built):
    out, _ = built
    tables = re.findall(r"<table.*?</table>", (out / "index.html").read_text(), re.S)
    assert len(tables) >= 3  # jobs, verdicts, other metrics
    for table in tables:
        assert estimated_width(table) <= 1400, table[:200]


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


@pytest.mark.slow
def test_each_factor_takes_its_own_baseline_from_the_command_line(sweep, tmp_path, capsys):
    out = tmp_path / "r"
    with contextlib.redirect_stdout(io.StringIO()):
        report([str(sweep), "--out", str(out), "--baseline", "init=kaiming_normal",
                "--baseline", "bias=prior"])  # fmt: skip
    rows = [r for r in csv.DictReader(open(out / "comparison.csv")) if not r["context"]]
    assert {(r["factor"], r["level"], r["baseline"]) for r in rows if r["primary"] == "True"} == {
        ("init", "pytorch_default", "kaiming_normal"), ("bias", "zeros", "prior"),
        ("init × bias", "", "")}  # fmt: skip
    with pytest.raises(SystemExit) as e:  # a level no job ran: one line, before any plot
        report([str(sweep), "--out", str(tmp_path / "bad"), "--baseline", "init=nope"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "init=kaiming_normal" in err
    assert not (tmp_path / "bad").exists()


def test_a_dir_without_a_job_is_one_line_and_exit_2_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "notes").mkdir()  # a directory, but no job in it
    with pytest.raises(SystemExit) as e:
        report([str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"initsweep-report: error: no job under {tmp_path}")
    assert len(err.splitlines()) == 1 and not (tmp_path / "report").exists()


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
