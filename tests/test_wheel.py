"""The built wheel, installed in a fresh environment, run from a directory outside the checkout.

The environment holds only the wheel; its dependencies come from this venv's site-packages
(through a ``.pth`` line, so this venv's editable install of the checkout is not seen). The
example project, copied out of the installed package by ``initsweep-example``, runs its multirun
from its own directory with its own config dir, and ``initsweep-report`` shows each arm's loss
at init against the targets' best constants.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def sh(*args, cwd: Path, env: dict | None = None, timeout: int = 600):
    res = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert res.returncode == 0, f"{args}\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    return res


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(the fresh environment's bin/, a working dir outside the checkout, the environment)."""
    tmp = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp / "dist", REPO]
    res = subprocess.run([*pip[:5], "--no-build-isolation", *pip[5:]], capture_output=True)
    if res.returncode != 0:  # no setuptools in this venv: let pip build in isolation
        sh(*pip, cwd=tmp)
    (wheel,) = (tmp / "dist").glob("initsweep-*.whl")
    env_dir = tmp / "env"
    sh(sys.executable, "-m", "venv", env_dir, cwd=tmp)
    bin_dir = env_dir / "bin"
    sh(bin_dir / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel, cwd=tmp)
    purelib = sh(
        bin_dir / "python",
        "-c",
        "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        cwd=tmp,
    ).stdout.strip()
    # this venv's site dirs and those its own .pth lines add (a venv layered on another's)
    deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    Path(purelib, "initsweep-deps.pth").write_text("\n".join(deps) + "\n")
    work = tmp / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HYDRA_FULL_ERROR="0", WANDB_MODE="offline", PATH=f"{bin_dir}:{env['PATH']}")
    return bin_dir, work, env


def test_the_wheel_carries_the_config_tree_and_runs_from_anywhere(installed):
    bin_dir, work, env = installed
    code = "import initsweep; print(initsweep.__file__)"
    where = sh(bin_dir / "python", "-c", code, cwd=work, env=env)
    assert str(bin_dir.parent) in where.stdout and str(REPO) not in where.stdout
    quick = ["trainer.epochs=1", "trainer.progress=false"]
    sh(bin_dir / "initsweep-train", *quick, "hydra.run.dir=train", cwd=work, env=env)
    sh(bin_dir / "python", "-m", "initsweep", *quick, "hydra.run.dir=module", cwd=work, env=env)
    probe = sh(bin_dir / "initsweep-probe", "hydra.run.dir=probe", cwd=work, env=env)
    assert "loss at init" in probe.stdout
    for run in ("train", "module"):
        assert json.loads((work / run / "summary.json").read_text())["status"] == "finished"
    report = sh(bin_dir / "initsweep-report", "train", cwd=work, env=env)
    assert "report:" in report.stdout


def test_the_example_project_runs_its_study_and_reports_the_loss_at_init(installed):
    bin_dir, work, env = installed
    project = work / "arrival_time_project"
    sh(bin_dir / "initsweep-example", "arrival_time", project, cwd=work, env=env)
    sh(
        bin_dir / "initsweep-train",
        "--config-dir",
        "conf",
        "-m",
        "experiment=arrival_bias",
        "seeds=[0,1]",
        "trainer.epochs=1",
        "trainer.progress=false",
        "hydra.sweep.dir=sweep",
        cwd=project,
        env=env,
    )
    summaries = sorted((project / "sweep").glob("*/summary.json"))
    assert len(summaries) == 12  # bias zeros/mean/median/huber x loss mse/mae/huber
    report = sh(bin_dir / "initsweep-report", "sweep", cwd=project, env=env).stdout
    assert "Loss at init against the targets' best constants" in report
    init = json.loads((project / "sweep" / "0" / "init.json").read_text())
    targets = init["targets"]
    rows = [line for line in report.splitlines() if line.startswith("bias=")]
    assert len(rows) == 12
    for line in rows:  # the zero-weight head: each rule starts at its own best-constant loss
        if "bias=mean trainer.loss=mse" in line:
            assert f"{targets['var']:.4g}" in line.split()[-4]
        if "bias=median trainer.loss=mae" in line:
            assert f"{targets['mean_abs_dev']:.4g}" in line.split()[-4]
        if "bias=huber trainer.loss=huber" in line:
            assert f"{targets['huber_at_optimum']:.4g}" in line.split()[-4]
