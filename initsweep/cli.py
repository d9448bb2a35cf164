"""Console entry points: ``initsweep-train``, ``initsweep-probe``, ``initsweep-report``.

Only argument handling lives here: Hydra composes the config, the job layer
(:mod:`initsweep.job`) runs it, and a user's mistake ends in one line and exit code 2.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.errors import HydraException, InstantiationException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from initsweep import job
from initsweep.config import CONF_DIR, HYDRA_TARGETS
from initsweep.errors import ConfigError, first_line
from initsweep.files import unwritable


class OutputDirCheck(Callback):
    """Refuse, in one line, an output dir that cannot be written, before Hydra creates it."""

    def _check(self, key: str, value: str) -> None:
        why = unwritable(value)
        if why:
            print(f"initsweep: error: {key}={value!r} is not writable ({why})", file=sys.stderr)
            sys.exit(2)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check("hydra.run.dir", config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check("hydra.sweep.dir", config.hydra.sweep.dir)


def _run_or_exit(cfg: DictConfig, task=job.run) -> float:
    """User mistakes end the job with one line and exit code 2, never a traceback; in an Optuna
    search they are the trial's outcome: raised, so the sweeper records the trial failed with
    that line and the search goes on (a sampled value the job rejects)."""
    try:
        return task(cfg)
    except (ConfigError, InstantiationException, OmegaConfBaseException, HydraException) as e:
        if _in_search():
            raise ConfigError(first_line(e)) from None
        print(f"initsweep: error: {first_line(e)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as e:
        signum = e.args[0] if e.args else signal.SIGINT
        print(
            f"initsweep: interrupted by {signal.Signals(signum).name}; run the same command "
            "(same output dir) to resume from the last epoch's checkpoint",
            file=sys.stderr,
        )
        sys.exit(128 + signum)


def _in_search() -> bool:
    """Whether this job is a trial of an ``initsweep_optuna`` search."""
    from hydra.core.hydra_config import HydraConfig

    target = HydraConfig.get().sweeper.get("_target_", "") if HydraConfig.initialized() else ""
    return target.endswith("InitsweepOptunaSweeper")


def _terminate(signum: int, frame) -> None:
    raise KeyboardInterrupt(signum)


@hydra.main(config_path=str(CONF_DIR), config_name="train", execution_whitelist=HYDRA_TARGETS)
def _train(cfg: DictConfig) -> float:
    return _run_or_exit(cfg)


def train() -> None:
    """``initsweep-train``: the Hydra app (``python -m initsweep`` does the same)."""
    # SIGTERM ends a job like Ctrl-C: trackers finish, files stay consistent. Launchers that
    # handle it themselves (submitit requeues on its own signals) keep their handler.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
    _train()


@hydra.main(config_path=str(CONF_DIR), config_name="train", execution_whitelist=HYDRA_TARGETS)
def _probe(cfg: DictConfig) -> float:
    return _run_or_exit(cfg, job.probe)


def probe() -> None:
    """``initsweep-probe``: build and initialise the models, print step-0 diagnostics, no training."""
    _probe()


def report(argv: list[str] | None = None) -> None:
    """``initsweep-report DIR [--out OUT] [--log-x]``: tables, plots and index.html of a sweep."""
    import argparse

    from initsweep.report import Options, make_report

    parser = argparse.ArgumentParser(
        prog="initsweep-report",
        description="Tables, plots and an HTML page from a sweep's (or a run's) job files.",
    )
    parser.add_argument("dir", type=Path, help="a multirun sweep dir or a single run's dir")
    parser.add_argument("--out", type=Path, help="where to write the report (default: DIR/report)")
    parser.add_argument(
        "--log-x", action="store_true", help="training curves on a log step axis (first steps)"
    )
    parser.add_argument(
        "--baseline", metavar="KEY=VALUE", help="compare every job with this one, e.g. bias=zeros"
    )
    parser.add_argument("--level", type=float, default=0.95, help="confidence level (0.95)")
    parser.add_argument(
        "--target", help="loss (0.5) or metric:value (val/acc:0.9) for 'steps to reach'"
    )
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        parser.exit(2, f"initsweep-report: error: {args.dir} is not a directory\n")
    if not 0 < args.level < 1:
        parser.exit(2, f"initsweep-report: error: --level={args.level} must be in (0, 1)\n")
    options = Options(args.log_x, args.baseline, args.level, args.target)
    try:
        result = make_report(args.dir, args.out, options)
    except ConfigError as e:
        parser.exit(2, f"initsweep-report: error: {e}\n")
    print(result.text)
    print(f"report: {result.index.resolve()}")
