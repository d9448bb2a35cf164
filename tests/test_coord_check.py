"""The coordinate check (initsweep-probe coord_check=on) and μP's two published checks."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from initsweep.diagnostics.coord_check import RMSRecorder, format_coord_check, slopes, summarize
from initsweep.errors import ConfigError
from initsweep.job import job_spec, run_jobs
from initsweep.report import make_report
from initsweep.report.mup import FLAT, slope_verdict
from tests.conftest import REPO

SMALL = ["coord_check=on", "coord_check.widths=[16,32,64]", "coord_check.steps=2",
         "model.hidden=[16,16]", "optimizer=adam", "optimizer.lr=0.01", "seeds=[0,1]"]  # fmt: skip


def probe_job(spec):
    """The probe's runner on one job (``initsweep-probe``): its value, or its error raised."""
    (result,) = run_jobs([spec], until_init=True)
    if isinstance(result, Exception):
        raise result
    return result


def test_rms_is_the_root_mean_square_of_a_layers_outputs():
    layer = nn.Linear(3, 4)
    rec = RMSRecorder(nn.Sequential(layer), {"0": "output"}, seed=0, width=4)
    x = torch.randn(5, 3)
    rec.step = 2
    y = nn.Sequential(layer)(x)
    rec.close()
    (row,) = rec.rows
    assert row["rms"] == pytest.approx(float(y.detach().pow(2).mean().sqrt()), rel=1e-6)
    assert (row["step"], row["type"], row["width"]) == (2, "output", 4)


def test_slope_is_the_exponent_of_a_power_law_in_width():
    # RMS = 0.3 * width^0.75 at step 1, constant at step 0: slopes 0.75 and 0
    rows = [
        {
            "seed": 0,
            "width": w,
            "step": s,
            "module": "out",
            "type": "output",
            "rms": 0.3 * w**0.75 if s else 0.3,
        }  # fmt: skip
        for w in (64, 128, 512)
        for s in (0, 1)
    ]
    got = slopes(rows)["output"]
    assert got[1][0] == pytest.approx(0.75) and got[0][0] == pytest.approx(0.0, abs=1e-12)
    assert "+0.75" in format_coord_check(summarize(rows))


def test_probe_records_every_layer_type_at_every_width_and_step(make_cfg, tmp_path, capsys):
    value = probe_job(job_spec(make_cfg(*SMALL, "init=mup", "init.base_width=16")))
    data = json.loads((tmp_path / "coord_check.json").read_text())
    assert data["widths"] == [16, 32, 64] and data["steps"] == 2
    seen = {(r["type"], r["width"], r["step"], r["seed"]) for r in data["rows"]}
    assert seen == {(t, w, s, seed) for t in ("input", "hidden", "output") for w in (16, 32, 64)
                    for s in range(3) for seed in (0, 1)}  # fmt: skip
    assert value == pytest.approx(sum(data["slopes"]["output"]["2"].values()) / 2)
    assert "output RMS: width" in capsys.readouterr().out


def test_at_the_base_width_mup_is_its_base_scheme_draw_for_draw(make_cfg, tmp_path):
    runs = {}
    for init in (["init=pytorch_default"], ["init=mup", "init.base_width=16"]):
        out = tmp_path / init[0]
        probe_job(job_spec(make_cfg(*SMALL, *init, output_dir=out)))
        rows = json.loads((out / "coord_check.json").read_text())["rows"]
        runs[init[0]] = {
            (r["module"], r["seed"], r["step"]): r["rms"] for r in rows if r["width"] == 16
        }
    assert runs["init=mup"] == pytest.approx(runs["init=pytorch_default"], rel=1e-6)


@pytest.mark.parametrize(
    "overrides, says",
    [
        (["coord_check.widths=[64]"], "coord_check.widths=[64] is invalid: give at least two"),
        (["coord_check.steps=0"], "coord_check.steps=0 is invalid: must be an integer >= 1"),
        (["+coord_check.width=3"], "coord_check has no key 'width'; did you mean coord_check.widths?"),
        (["model=lstm", "dataset=adding"], "coord_check varies the model's width: declare which "
         "constructor key sets the model's width: model.width_key"),
    ],
)  # fmt: skip
def test_coord_check_bad_input_is_one_line(make_cfg, overrides, says):
    with pytest.raises(ConfigError) as err:
        small = [o for o in SMALL if "model=" not in " ".join(overrides) or "hidden" not in o]
        probe_job(job_spec(make_cfg(*small, *overrides)))
    assert says in str(err.value) and "\n" not in str(err.value)


def test_slope_verdicts_say_grows_flat_or_neither():
    assert slope_verdict("a", {0: 0.9, 1: 1.0, 2: 0.95}, 5, 0.95).endswith("grows with width")
    flat = slope_verdict("b", {0: 0.01, 1: -0.02, 2: 0.0}, 5, 0.95)
    assert flat.endswith(f"flat in width (interval inside ±{FLAT})")
    assert "neither" in slope_verdict("c", {0: 0.0, 1: 0.3, 2: -0.3}, 5, 0.95)
    assert "too few seeds" in slope_verdict("d", {0: 0.5, 1: 0.6}, 5, 0.95)


@pytest.mark.slow
def test_published_check_1_logits_grow_with_width_under_sp_and_stay_flat_under_mup(tmp_path):
    # TP V Fig. 5 through the CLI, 3 seeds, and the report's verdicts
    sweep = tmp_path / "sweep"
    exe = Path(sys.executable).parent / "initsweep-probe"
    args = [str(exe), "-m", "experiment=mup_coord_check", f"hydra.sweep.dir={sweep}"]
    res = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    report = make_report(sweep)
    text = report.text
    assert "init=pytorch_default: output-logit RMS ∝ width^" in text
    sp = next(line for line in text.splitlines() if line.startswith("init=pytorch_default:"))
    mup = next(line for line in text.splitlines() if line.startswith("init=mup:"))
    assert sp.endswith("grows with width") and mup.endswith("flat in width (interval inside ±0.2)")
    row = next(line for line in text.splitlines() if line.startswith("init=mup "))
    assert row.rstrip().endswith("clear")
    assert (sweep / "report" / "coord_check.png").exists()
    assert math.isfinite(float(sp.split("width^")[1].split()[0]))
