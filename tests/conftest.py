"""Shared fixtures: compose the real config tree, shrink it, and point outputs at tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from initsweep.config import CONF_DIR

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def make_cfg(tmp_path):
    """``make_cfg(*overrides)`` → a composed ``train.yaml`` with a small, quiet job in ``tmp_path``."""

    def _make(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF_DIR)):
            cfg = compose(
                "train", overrides=["trainer.epochs=2", "trainer.progress=false", *overrides]
            )
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir or tmp_path)
        return cfg

    return _make


def run_cli(
    *args: str, cwd: Path = REPO, timeout: int = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run ``python -m initsweep ARGS`` as a user would (``env`` added to the environment),
    capturing its output."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "initsweep", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
