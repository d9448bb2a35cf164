"""``hydra/launcher=population`` keeps Hydra's launcher contract.

Hydra's own launcher suites run against it, applied as Hydra's joblib plugin applies them
(facebookresearch/hydra, plugins/hydra_joblib_launcher/tests/test_joblib_launcher.py, in the
form of Hydra 1.4's own tests/test_basic_launcher.py): their
generic apps run job by job, as the basic launcher runs them. initsweep's own apps train each
group as one population, and a user sees what the basic launcher shows: the same callbacks with
the same results, the same failure lines and files, each job's own ``train.log``.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import sys
from typing import Any

import pytest
from hydra.core.plugins import Plugins
from hydra.experimental.callback import Callback
from hydra.plugins.launcher import Launcher
from hydra.test_utils.launcher_common_tests import (
    BatchedSweeperTestSuite,
    IntegrationTestSuite,
    LauncherTestSuite,
)

from hydra_plugins.initsweep_population.launcher import RUNS_JOBS, PopulationLauncher
from initsweep import cli, job

# every plugin's configs stored before hydra_restore_singletons takes its first snapshot
Plugins.instance()

# --- Hydra's suites ------------------------------------------------------------------------------


def test_discovery() -> None:
    # Hydra finds the launcher through the plugin entry point, as it finds its own
    assert PopulationLauncher.__name__ in [
        x.__name__ for x in Plugins.instance().discover(Launcher)
    ]


def test_initsweep_task_functions_carry_the_mark_the_launcher_reads() -> None:
    assert RUNS_JOBS == job.RUNS_JOBS
    for app in (cli._train, cli._probe):  # hydra.main's wrapper and the function Hydra runs
        assert getattr(app, RUNS_JOBS) and getattr(app.__wrapped__, RUNS_JOBS)


@pytest.mark.parametrize("launcher_name, overrides", [("population", [])])
class TestPopulationLauncher(LauncherTestSuite):
    """Hydra's launcher suite; hydra/launcher/population is the plugin's own config."""


@pytest.mark.parametrize(
    "task_launcher_cfg, extra_flags",
    [
        pytest.param(
            {},
            [
                "-m",
                "hydra/launcher=population",
                "hydra/hydra_logging=disabled",
                "hydra/job_logging=disabled",
            ],
            id="population_launcher_multirun",
        )
    ],
)
class TestPopulationLauncherIntegration(IntegrationTestSuite):
    """Hydra's integration suite: apps in their own process, the launcher chosen on their
    command line (Hydra 1.4 refuses a second ``hydra/launcher`` in the app's defaults)."""


@pytest.mark.parametrize(
    "launcher_name, overrides",
    [("population", ["hydra/sweeper=basic", "hydra.sweeper.max_batch_size=2"])],
)
class TestPopulationLauncherInBatches(BatchedSweeperTestSuite):
    """Hydra's suite for a sweeper that launches in batches: each batch a launch of its own."""


# --- initsweep's apps through the population --------------------------------------------------


class Record(Callback):
    """Every ``on_job_start`` / ``on_job_end`` a multirun fires, in order (class state: Hydra
    builds the callback from the config)."""

    calls: list[tuple] = []

    def on_job_start(self, config, **kwargs: Any) -> None:
        Record.calls.append(("start", config.hydra.job.num))

    def on_job_end(self, config, job_return, **kwargs: Any) -> None:
        value = job_return._return_value
        Record.calls.append(("end", config.hydra.job.num, job_return.status.name, value))


@pytest.fixture
def app(monkeypatch, capsys):
    """``app(main, *args)``: a console script (``cli.train``, ``cli.probe``) run in this process
    as a user runs it, with :class:`Record` as a callback; its exit code, stdout and stderr."""
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")  # cli._app sets it; restored afterwards
    monkeypatch.setenv("INITSWEEP_ALLOW_TARGETS", f"{__name__}.Record")
    root, sigterm = logging.getLogger(), signal.getsignal(signal.SIGTERM)
    handlers, level = root.handlers[:], root.level
    Record.calls = []

    def run(main, *args: str) -> tuple[int, str, str]:
        callback = f"+hydra.callbacks.record._target_={__name__}.Record"
        monkeypatch.setattr(sys, "argv", [main.__name__, *args, callback])
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code
        out = capsys.readouterr()
        return code, out.out, out.err

    yield run
    for h in root.handlers:  # the job logs' files Hydra opened
        if h not in handlers:
            h.close()
    root.handlers[:], root.level = handlers, level
    signal.signal(signal.SIGTERM, sigterm)


TINY = ["seeds=[0]", "trainer.epochs=1", "trainer.progress=false", "dataset.limit=120"]
# jobs 1, 3, 5: a bad lr (read with the spec); job 2: delta_orthogonal needs a conv weight (found
# when the group builds its models); jobs 0 and 4 train together
SWEEP = ["init=kaiming_normal,delta_orthogonal,orthogonal", "optimizer.lr=0.1,-1"]
LR = "optimizer.lr=-1 is invalid: must be a number > 0"


@pytest.mark.slow
@pytest.mark.usefixtures("hydra_restore_singletons")
@pytest.mark.parametrize("launcher", ["basic", "population"])
def test_callbacks_failures_and_logs_are_those_of_the_basic_launcher(app, tmp_path, launcher):
    code, out, err = app(
        cli.train, "-m", *SWEEP, *TINY, f"hydra/launcher={launcher}", f"hydra.sweep.dir={tmp_path}"
    )
    # a failed job is reported as the basic launcher reports it: its line, then the list; exit 2
    assert code == 2, err[-2000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("initsweep: error:")]
    init = "init scheme 'delta_orthogonal' cannot fill shape (64, 64): needs a conv weight"
    assert [ln.split(": ", 3)[2] for ln in lines[:4]] == ["job 1", "job 2", "job 3", "job 5"]
    assert lines[1].startswith(f"initsweep: error: job 2: {init}")
    assert lines[-1].startswith("initsweep: error: 4 of the jobs failed (the others ran): job 1:")
    for num in (1, 2, 3, 5):
        status = json.loads((tmp_path / str(num) / "status.json").read_text())
        assert status["status"] == "failed" and status["exit_code"] == 2
        assert (LR if num != 2 else init) in status["error"]

    # callbacks: each job once, in sweep order, with its float objective or its failure
    ends = [c for c in Record.calls if c[0] == "end"]
    assert [c for c in Record.calls if c[0] == "start"] == [("start", n) for n in range(6)]
    assert [(n, s) for _, n, s, _ in ends] == [
        (0, "COMPLETED"), (1, "FAILED"), (2, "FAILED"), (3, "FAILED"), (4, "COMPLETED"),
        (5, "FAILED"),
    ]  # fmt: skip
    for _, num, status, value in ends:
        if status == "COMPLETED":  # each job's own objective, from its own dir
            summary = json.loads((tmp_path / str(num) / "summary.json").read_text())
            assert isinstance(value, float) and value == summary["objective"]["value"]
        else:
            assert isinstance(value, cli.JobFailed)
    assert ends[0][3] != ends[4][3]  # kaiming_normal and orthogonal: two different numbers

    # each train.log holds its own job's lines, and no neighbour's
    for num in (0, 4):
        log = (tmp_path / str(num) / "train.log").read_text()
        assert log.count("Instantiating <initsweep.models.MLP>") == 1
        assert f"({tmp_path / str(num)})" in log and "val/loss" in log  # its results table
        assert not [n for n in range(6) if n != num and f"({tmp_path / str(n)})" in log]
    assert "needs a conv weight" in (tmp_path / "2" / "train.log").read_text()

    # the sweep ends with one table across its finished jobs, best first
    table = out[out.index("2 jobs ranked by val/loss (lower is better)") :].splitlines()
    ranked = [line.split() for line in table[3:5]]
    values = {num: value for _, num, _, value in ends}
    assert [r[1] for r in ranked] == sorted(["0", "4"], key=lambda n: values[int(n)])
    assert [r[-1] for r in ranked] == ["1/1", "1/1"]
    assert (launcher == "population") == (tmp_path / ".population").is_dir()


@pytest.mark.slow
@pytest.mark.usefixtures("hydra_restore_singletons")
def test_the_probe_through_the_population_trains_nothing(app, tmp_path):
    code, out, err = app(
        cli.probe, "-m", "init=xavier_uniform,orthogonal", "seeds=[0,1]", "model.hidden=[16]",
        "hydra/launcher=population", f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert code == 0, err[-2000:]
    for num in ("0", "1"):
        files = {p.name for p in (tmp_path / num).iterdir()}
        assert "init.json" in files and not files & {"metrics.jsonl", "summary.json"}
        seeds = json.loads((tmp_path / num / "init.json").read_text())["seeds"]
        assert [s["seed"] for s in seeds] == [0, 1]
    ends = [c for c in Record.calls if c[0] == "end"]
    assert [(n, s) for _, n, s, _ in ends] == [(0, "COMPLETED"), (1, "COMPLETED")]
    # each job's value is its own mean excess loss at init
    for _, num, _, value in ends:
        seeds = json.loads((tmp_path / str(num) / "init.json").read_text())["seeds"]
        assert math.isclose(value, sum(s["excess"] for s in seeds) / 2)
    assert "not an initsweep task" not in out + err


@pytest.mark.usefixtures("hydra_restore_singletons")
def test_a_batch_keeps_each_job_s_result_error_and_log_lines(make_cfg, tmp_path, caplog):
    # the launcher's three steps, in process: collect two specs (one bad), train, complete
    caplog.set_level(logging.INFO)  # as Hydra's job logging sets it
    from hydra.conf import HydraConf
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from initsweep.errors import ConfigError
    from initsweep.job.batch import collecting, run_kept

    def as_job(num: int) -> None:  # what Hydra's run_job sets before it calls the task
        hydra = OmegaConf.create({"hydra": OmegaConf.structured(HydraConf)})
        hydra.hydra.job.num = num
        HydraConfig.instance().set_config(hydra)

    good = make_cfg(*TINY, output_dir=tmp_path / "0")
    bad = make_cfg(*TINY, "optimizer.lr=-1", output_dir=tmp_path / "1")
    with collecting() as batch:
        for num, cfg in enumerate((good, bad)):
            as_job(num)
            assert math.isnan(job.run(cfg))  # collecting: nothing trains yet
        assert batch.groups() == [[0]]  # a job without a spec is in no group
        assert not (tmp_path / "0").exists()
        ((results, records),) = [run_kept(batch.specs(g), False) for g in batch.groups()]
        batch.done([0], results, records)
        batch.completing = True
        as_job(0)
        value = job.run(good)
        as_job(1)
        with pytest.raises(ConfigError, match="optimizer.lr=-1"):
            job.run(bad)
    summary = json.loads((tmp_path / "0" / "summary.json").read_text())
    assert value == summary["objective"]["value"]
    lines = [r.getMessage() for r in batch.jobs[0].records]
    assert "Instantiating <initsweep.models.MLP>" in lines
    assert any(line.startswith(f"default: 1 seeds ({tmp_path / '0'})") for line in lines)
