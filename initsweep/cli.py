"""Console entry points: ``initsweep-train``, ``initsweep-probe``, ``initsweep-report``.

Only argument handling lives here: Hydra composes the config, the job layer
(:mod:`initsweep.job`) runs it, and a user's mistake ends in one line and exit code 2.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from initsweep import help as _help  # noqa: F401  (registers the --help template's resolver)
from initsweep import job
from initsweep.config import CONF_DIR, FILE_NAMES, HYDRA_TARGETS
from initsweep.errors import ConfigError, compose_error
from initsweep.faults import classify, failed_jobs, mark_failed
from initsweep.files import DirBusy, lock_dir, unwritable
from initsweep.interrupt import catch_sigterm, exit_interrupted
from initsweep.job.spec import check_name
from initsweep.multirun import sweep_table
from initsweep.targets import hydra_refusal, user_patterns


def _error(line: str, code: int) -> None:
    print(f"initsweep: error: {line}", file=sys.stderr)
    sys.exit(code)


class OutputDirCheck(Callback):
    """Before Hydra writes anything: refuse an output dir that cannot be written, and take the
    dir's lock (:func:`initsweep.files.lock_dir`), so a second writer stops before it touches
    the first one's files. Both in one line. Also remembers the sweep dir, where a multirun's
    jobs are ranked (:func:`initsweep.multirun.sweep_table`) and its failed jobs listed from at
    the end. (Hydra pickles callbacks to launcher workers: the
    state lives in the class.)"""

    locks: list = []  # held until the run or multirun ends
    sweep_dir: Path | None = None  # the running multirun's, to list its failed jobs
    started = 0.0

    def _check(self, key: str, value: str) -> None:
        why = unwritable(value)
        if why:
            _error(f"{key}={value!r} is not writable ({why})", 2)
        Path(value).mkdir(parents=True, exist_ok=True)
        try:
            OutputDirCheck.locks.append(lock_dir(value, key))
        except DirBusy as e:
            _error(str(e), 2)

    def _release(self) -> None:
        while OutputDirCheck.locks:
            lock = OutputDirCheck.locks.pop()
            if lock is not None:
                lock.release()

    def _check_names(self, config: DictConfig) -> None:
        try:  # a search opens outputs/optuna/<study name>.db before any job
            for key in FILE_NAMES:  # the keys whose values name files
                value = OmegaConf.select(config, key)
                if value is not None:
                    check_name(key, value)
        except ConfigError as e:
            _error(str(e), 2)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check_names(config)
        self._check("hydra.run.dir", config.hydra.run.dir)

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._release()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check_names(config)
        self._check("hydra.sweep.dir", config.hydra.sweep.dir)
        OutputDirCheck.sweep_dir, OutputDirCheck.started = (
            Path(config.hydra.sweep.dir),
            time.time(),
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """One table across the sweep's finished jobs (also when some failed or it was
        stopped: the failure lines follow it)."""
        table = sweep_table(OutputDirCheck.sweep_dir) if OutputDirCheck.sweep_dir else None
        if table:
            print(f"\n{table}")
        self._release()


class JobFailed(Exception):
    """A job of a multirun failed (reported as it happened): the launcher runs the others.

    ``kind`` names the failure's own class (``ConfigError`` ...): the search sweeper records it
    in the trial's ``fail_reason``."""

    def __init__(self, line: str, kind: str):
        super().__init__(line)
        self.kind = kind


def _multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _run_or_exit(cfg: DictConfig, task=job.run) -> float:
    """A known failure (:func:`initsweep.faults.classify`) ends a single run with one line and
    a ``status.json``, never a traceback; in a multirun the job reports it and fails, and the
    launcher goes on with the others."""
    try:
        return task(cfg)
    except KeyboardInterrupt as e:
        exit_interrupted(e)
    except Exception as e:
        fault = classify(e, cfg.paths.output_dir)
        if fault is None:
            raise
        line, code = fault
        if not isinstance(e, DirBusy):  # another writer's dir is not this job's to mark
            overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
            mark_failed(cfg.paths.output_dir, line, code, overrides)
        if not _multirun():
            _error(line, code)
        print(f"initsweep: error: job {HydraConfig.get().job.num}: {line}", file=sys.stderr)
        raise JobFailed(line, type(e).__name__) from None


def _app(main) -> None:
    """Run a Hydra app so that every known failure ends in one line, also those Hydra meets
    outside a job (a refused ``hydra.callbacks`` target) and a multirun's failed jobs.

    With ``HYDRA_FULL_ERROR`` Hydra re-raises what it would print as a traceback; a value or
    option the schemas refuse at composition is one line (exit 2), other composition errors keep
    Hydra's own compact message (exit 1), anything unknown its traceback.
    ``INITSWEEP_ALLOW_TARGETS`` may add the user's own callback classes (the config's
    ``allow_targets`` is read after Hydra built them).
    """
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        extra = user_patterns(None)  # INITSWEEP_ALLOW_TARGETS, checked
        with hydra.utils.execution_whitelist(extra or None):
            main()
    except CompactHydraException as e:
        bad_value = compose_error(e)  # a wrong type or option: the user's, in one line
        if bad_value is not None:
            _error(str(bad_value), 2)
        print(e, file=sys.stderr)
        if isinstance(e.__cause__, OmegaConfBaseException):
            print(e.__cause__, file=sys.stderr)
        sys.exit(1)
    except ConfigError as e:
        _error(str(e), 2)
    except KeyboardInterrupt as e:  # a multirun's launching process
        exit_interrupted(e)
    except Exception as e:
        refusal = hydra_refusal(e)
        if refusal is not None:
            _error(str(refusal), 2)
        sweep = OutputDirCheck.sweep_dir
        failed = failed_jobs(sweep, OutputDirCheck.started) if sweep else []
        if not failed:
            raise
        listed = "; ".join(f"job {f['job']}: {f['error']}" for f in failed)
        code = 2 if all(f.get("exit_code") == 2 for f in failed) else 1
        _error(f"{len(failed)} of the jobs failed (the others ran): {listed}", code)


def _import_from_here() -> None:
    """Your project's modules import from the directory you run in, as under ``python -m``
    (a console script's ``sys.path`` starts at its own ``bin/`` instead)."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())


@hydra.main(config_path=str(CONF_DIR), config_name="train", execution_whitelist=HYDRA_TARGETS)
@job.runs_jobs
def _train(cfg: DictConfig) -> float:
    catch_sigterm()  # also in a launcher's worker process, which runs the job alone
    return _run_or_exit(cfg)


def train() -> None:
    """``initsweep-train``: the Hydra app (``python -m initsweep`` does the same)."""
    catch_sigterm()
    _import_from_here()
    _app(_train)


@hydra.main(config_path=str(CONF_DIR), config_name="probe", execution_whitelist=HYDRA_TARGETS)
@job.runs_jobs
def _probe(cfg: DictConfig) -> float:
    return _run_or_exit(cfg, job.probe)


def probe() -> None:
    """``initsweep-probe``: build and initialise the models, print step-0 diagnostics, no training."""
    _import_from_here()
    _app(_probe)


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
        "--baseline",
        metavar="KEY=VALUE",
        action="append",
        help="a factor's baseline level, e.g. bias=zeros (repeat it, one per factor)",
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
