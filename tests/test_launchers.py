"""The launcher presets that need no cluster: joblib (parallel processes) and submitit's local
executor. (``slurm``/``slurm_gpu`` run against a real cluster in test_slurm.py.)"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import run_cli

JOBS = ["seeds=[0]", "trainer.epochs=1", "trainer.progress=false"]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "local"])
def test_launcher_preset_runs_every_job(tmp_path, launcher):
    res = run_cli(
        "-m",
        *JOBS,
        "init=pytorch_default,kaiming_normal",
        f"hydra/launcher={launcher}",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert res.returncode == 0, res.stderr
    inits = {
        json.loads(p.read_text())["config"]["init"]["name"]
        for p in tmp_path.glob("*/summary.json")
    }
    assert inits == {"pytorch_default", "kaiming_normal"}
    hydra = yaml.safe_load((tmp_path / "0" / ".hydra" / "hydra.yaml").read_text())["hydra"]
    if launcher == "joblib":
        # W&B's service cannot be forked from a loky worker: jobs start it in thread mode
        assert hydra["job"]["env_set"] == {"WANDB_START_METHOD": "thread"}
    else:
        assert list((tmp_path / ".submitit").glob("*/*_log.out"))  # logs laid out as on SLURM
