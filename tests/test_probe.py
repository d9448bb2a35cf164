"""``initsweep-probe``: the step-0 diagnostics of a job, without training."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from initsweep.errors import ConfigError
from initsweep.job import probe
from tests.conftest import REPO


def test_probe_writes_init_json_with_layers_and_trains_nothing(make_cfg, tmp_path):
    probe(make_cfg("init=zeros", "bias=prior", "model.hidden=[16,16]"))
    init = json.loads((tmp_path / "init.json").read_text())
    assert [s["seed"] for s in init["seeds"]] == [0, 1, 2]
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "summary.json").exists()
    for s in init["seeds"]:
        # zero output weights: the loss at init is exactly the prior's entropy (excess 0)
        assert s["measured_loss"] == pytest.approx(s["expected_loss"], abs=1e-5)
        layers = {row["param"]: row for row in s["layers"]}
        assert set(layers) == {"body.1.weight", "body.3.weight", "out.weight"}
        for row in layers.values():  # the symmetry monitor shows why zeros fail
            assert row["effective_rank"] == 0.0 and row["grad_norm"] == 0.0
            assert row["weight_std"] == row["theory_std"] == 0.0
        assert layers["body.3.weight"]["dead_frac"] == 1.0  # relu(0) = 0: no unit ever fires


@pytest.mark.parametrize(
    "overrides, why",
    [
        (["init=xavier_uniform"], "1 (Glorot & Bengio 2010)"),
        (["init=xavier_uniform", "init.gain=act"], "√2 (act: relu)"),
        (["init=kaiming_normal", "model.activation=tanh"], "√2 = relu's (He et al. 2015)"),
        (["init=orthogonal", "init.gain=0.5"], "0.5 (given)"),
    ],
)
def test_probe_table_and_init_json_say_which_gain_and_why(
    make_cfg, tmp_path, capsys, overrides, why
):
    probe(make_cfg(*overrides, "model.hidden=[16]", "seeds=[0]"))
    table = capsys.readouterr().out
    header = next(line for line in table.splitlines() if line.lstrip().startswith("param"))
    assert header.split()[:4] == ["param", "shape", "scheme", "gain"]
    assert re.search(rf"body\.1\.weight\s+16x64\s+\w+\s+{re.escape(why)}\s", table)
    (seed,) = json.loads((tmp_path / "init.json").read_text())["seeds"]
    assert {row["gain_source"] for row in seed["layers"]} == {why}
    assert {a.get("gain_source") for a in seed["assignment"] if a["param"].endswith("weight")} == {
        why
    }


def test_probe_bad_input_is_a_config_error(make_cfg):
    with pytest.raises(ConfigError, match="init.gain"):
        probe(make_cfg("init=xavier_uniform", "init.gain=-1"))


@pytest.mark.slow
def test_initsweep_probe_prints_the_table_for_any_scheme(tmp_path):
    # the console script as a user runs it, over three schemes in one multirun
    exe = Path(sys.executable).parent / "initsweep-probe"
    res = subprocess.run(
        [
            str(exe),
            "-m",
            "model=mlp",
            "init=xavier_uniform,lsuv,sparse",
            "seeds=[0,1]",
            "model.hidden=[32,32]",
            f"hydra.sweep.dir={tmp_path}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    for scheme in ("xavier_uniform", "lsuv", "sparse"):
        assert re.search(rf"body\.1\.weight\s+32x64\s+{scheme}\s", res.stdout), scheme
    assert "eff rank" in res.stdout and "loss at init" in res.stdout
    inits = sorted(tmp_path.glob("*/init.json"))
    assert len(inits) == 3
    for path in inits:
        seeds = json.loads(path.read_text())["seeds"]
        assert len(seeds) == 2 and all(math.isfinite(s["measured_loss"]) for s in seeds)


@pytest.mark.parametrize(
    ("overrides", "loaded"),
    [
        ("model=mlp dataset=synthetic dataset.samples=400", []),
        ("model=resnet18 dataset=digits dataset.flatten=false", ["sklearn", "torchvision"]),
    ],
)
def test_a_job_imports_only_what_its_config_names(tmp_path, overrides, loaded):
    # torchvision and scikit-learn are a second of imports each: a job on generated data with
    # an MLP needs neither; the digits and a torchvision net still load them by config name
    code = (
        "import atexit, sys; from initsweep.cli import probe; "
        "atexit.register(lambda: print('LOADED', *sorted("
        "m for m in ('torchvision', 'sklearn') if m in sys.modules)))\n"
        "probe()"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, *overrides.split(), "seeds=[0]", f"hydra.run.dir={tmp_path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "init.json").exists()
    assert res.stdout.split("LOADED")[-1].split() == loaded
