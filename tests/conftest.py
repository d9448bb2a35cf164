"""Shared fixtures: compose the real config tree, shrink it, and point outputs at tmp_path."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
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


@dataclass
class AppResult:
    """What a console script returned: exit code and what it printed (as ``CompletedProcess``)."""

    returncode: int
    stdout: str
    stderr: str


APPS = ("initsweep-train", "initsweep-probe", "initsweep-report", "initsweep-example")


def run_app(app: str, *args: str, cwd: Path | None = None, env: dict | None = None) -> AppResult:
    """Run console script ``app`` (one of :data:`APPS`) with ``args`` in this process, as its
    entry point would: the exit code, stdout and stderr come back; nothing it set stays behind.

    Milliseconds to a few seconds where :func:`run_cli` pays a new interpreter (torch, Hydra)
    per call. Hydra's global state, the environment, ``sys.argv``/``sys.path``, the working dir,
    the signal handlers, the root logger's handlers and torch's thread count are put back after
    each call, and :class:`initsweep.cli.OutputDirCheck` releases its locks. A traceback (an
    unknown failure) is written to the returned stderr with exit code 1, as Python would.
    """
    from initsweep import cli, example

    entry = {
        "initsweep-train": cli.train,
        "initsweep-probe": cli.probe,
        "initsweep-report": lambda: cli.report(list(args)),
        "initsweep-example": lambda: example.main(list(args)),
    }[app]
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    saved = (
        sys.argv[:],
        sys.path[:],
        dict(os.environ),
        os.getcwd(),
        {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)},
        root.handlers[:],
        root.level,
        torch.get_num_threads(),
    )
    code = 0
    try:
        os.environ.update({"HYDRA_FULL_ERROR": "0", **(env or {})})
        if cwd is not None:
            os.chdir(cwd)
        sys.argv = [app, *map(str, args)]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                entry()
            except SystemExit as e:  # sys.exit(code), sys.exit("message") or sys.exit()
                code = e.code if isinstance(e.code, int) else int(e.code is not None)
                if isinstance(e.code, str):
                    print(e.code, file=sys.stderr)
            except BaseException:  # a traceback is this run's output, exit 1
                traceback.print_exc()
                code = 1
    finally:
        argv, path, environ, cwd_before, handlers, root_handlers, level, threads = saved
        sys.argv[:], sys.path[:] = argv, path
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(cwd_before)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for handler in root.handlers[:]:
            if handler not in root_handlers:
                root.removeHandler(handler)
                handler.close()
        root.handlers[:] = root_handlers
        root.setLevel(level)
        torch.set_num_threads(threads)
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None
        cli.OutputDirCheck()._release()
        cli.OutputDirCheck.sweep_dir = None
    return AppResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def app():
    """``app("initsweep-train", *args, cwd=..., env=...)`` → :class:`AppResult`, in process
    (:func:`run_app`); the fast tests' way to run a console script."""
    return run_app
