"""Optuna search: real sweeps through the CLI on tiny data, with the study in a tmp SQLite file."""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import math
import statistics
from pathlib import Path

import optuna
import pytest
import yaml
from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from optuna.trial import TrialState
from scipy import stats

from hydra_plugins.initsweep_optuna.space import parse_space
from initsweep.config import CONF_DIR
from initsweep.errors import ConfigError
from initsweep.job import job_spec
from initsweep.report.search import find_study_outputs
from initsweep.search import JobTrial, Pruned, PruningHook, open_job_trial
from initsweep.search.logs import route_optuna_logs
from initsweep.search.pruner import build_pruner, resolve_pruner
from initsweep.search.pruning import open_trial
from initsweep.search.seeds import compare_top, per_seed, seed_attrs
from initsweep.search.storage import resolve_storage
from initsweep.summary import objective_value
from initsweep.train.loop import CopyState
from tests.conftest import run_cli

# one seed, a few epochs on 200 digits: a trial takes about a second
TINY = ["dataset.limit=200", "seeds=[0]", "trainer.progress=false", "trainer.log_every=2"]


def search(tmp: Path, *args: str, sweep: str = "sweep"):
    return run_cli(
        *TINY,  # first: the test's own arguments override these
        *args,
        f"hydra.sweep.dir={tmp / sweep}",
        f"search.storage=sqlite:///{tmp / 'study.db'}",
    )


def stored_trials(tmp: Path, study_name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study_name, storage=f"sqlite:///{tmp / 'study.db'}").trials


def epochs_run(job_dir: Path) -> int:
    return max(json.loads(line)["epoch"] for line in open(job_dir / "metrics.jsonl"))


# --- the sweeper plugin and the search space -----------------------------------------------


def test_plugin_is_discovered_and_its_config_stored():
    # Hydra finds the sweeper through the hydra.plugins entry point, also from an editable install
    names = Plugins.instance().class_name_to_class
    assert "hydra_plugins.initsweep_optuna.initsweep_sweeper.InitsweepOptunaSweeper" in names
    assert "initsweep_optuna.yaml" in ConfigStore.instance().list("hydra/sweeper")


@pytest.mark.parametrize(
    "arg, expected",
    [
        ("init.gian=interval(0.1, 10)", "did you mean init.gain"),
        ("init.gain=interval(10, 0.1)", "low <= high"),
        ("init.gain=tag(log, interval(0, 1))", "low > 0"),
    ],
)
def test_bad_search_space_is_one_line_naming_the_key(make_cfg, arg, expected):
    with pytest.raises(ConfigError) as e:
        parse_space([arg], make_cfg())
    assert arg.split("=")[0] in str(e.value) and expected in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_bad_search_space_stops_the_cli_before_any_trial(tmp_path):
    res = search(tmp_path, "-m", "search=optuna", "init.gian=tag(log, interval(0.1, 10))")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "init.gian" in res.stderr and "did you mean init.gain" in res.stderr
    # nothing ran and no study was created
    assert not (tmp_path / "study.db").exists()


def test_presets_search_gain_scale_and_lr(make_cfg):
    cfg = make_cfg()
    spaces = {}
    for name in ("gain", "scale", "gain_scale", "lr_gain"):
        params = OmegaConf.load(CONF_DIR / "search" / f"{name}.yaml").hydra.sweeper.params
        spaces[name] = parse_space([f"{k}={v}" for k, v in params.items()], cfg)[0]
    assert {k: sorted(v) for k, v in spaces.items()} == {
        "gain": ["init.gain"],
        "scale": ["init.scale"],
        "gain_scale": ["init.gain", "init.scale"],
        "lr_gain": ["init.gain", "optimizer.lr"],
    }
    # gains and learning rates span decades: sampled log-uniformly
    assert all(d.log for space in spaces.values() for d in space.values())


def test_storage_is_made_absolute_and_its_folder_created(tmp_path):
    url = resolve_storage("sqlite:///a/b/study.db", root=tmp_path)
    assert url == f"sqlite:///{tmp_path}/a/b/study.db" and (tmp_path / "a" / "b").is_dir()
    assert resolve_storage("runs/j.log", root=tmp_path) == str(tmp_path / "runs" / "j.log")
    assert resolve_storage("postgresql://u@h/db") == "postgresql://u@h/db"
    with pytest.raises(ConfigError, match="search.storage"):
        resolve_storage("outputs/study.db")  # neither a URL nor a journal file


# --- diverged seeds, and the pruning hook on a real study ------------------------------------


def copies(*finals: float | None) -> list[CopyState]:
    """One copy per value; ``None`` is a seed that diverged (its last metrics kept, unused)."""
    return [
        CopyState(i, {"val/loss": 9.9 if v is None else v}, None if v is not None else 3)
        for i, v in enumerate(finals)
    ]


def test_on_diverge_ignores_penalizes_or_fails():
    two_live = copies(1.0, 2.0, None)
    assert objective_value(two_live, "val/loss", "ignore") == 1.5
    assert objective_value(two_live, "val/loss", "penalize", 9.0) == pytest.approx(4.0)
    assert math.isnan(objective_value(two_live, "val/loss", "fail"))
    # all seeds diverged: no value to ignore the others for, or to fail; the penalty stays one
    assert math.isnan(objective_value(copies(None, None), "val/loss", "ignore"))
    assert math.isnan(objective_value(copies(None, None), "val/loss", "fail"))
    assert objective_value(copies(None, None), "val/loss", "penalize", 9.0) == 9.0


def test_on_diverge_is_checked(make_cfg):
    with pytest.raises((HydraException, OmegaConfBaseException), match="trainer.on_diverge"):
        make_cfg("trainer.on_diverge=skip")  # an enum: refused when the config is composed
    with pytest.raises(ConfigError, match="trainer.diverge_penalty"):
        job_spec(make_cfg("trainer.on_diverge=penalize"))


def test_pruning_hook_prunes_a_trial_worse_than_the_median(tmp_path, make_cfg):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=url)
    good = study.ask()
    for epoch, value in ((1, 0.9), (2, 0.5)):
        good.report(value, epoch)
    study.tell(good, 0.5)
    hopeless, fine = study.ask(), study.ask()

    # a trial opened by its job, as the sweeper's overrides describe it
    cfg = make_cfg(
        "search=gain",
        "search/pruner=median",
        "search.pruner.n_startup_trials=1",
        "search.pruner.n_warmup_steps=0",
        f"++search.trial={fine.number}",
        "++search.study_name=s",
        f"++search.storage='{url}'",
    )
    trial = open_job_trial(job_spec(cfg).trial)
    hook = PruningHook(trial, lambda c: objective_value(c, "val/loss"), lambda c: {"n": len(c)})
    hook.on_epoch_end(1, 10, None, copies(0.8))  # better than the completed trial: goes on
    hook.on_epoch_end(2, 20, None, copies(float("nan"), None))  # not reported: no value

    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    seeds = {"per_seed": {"0": 2.0}, "n": 1}
    hook = PruningHook(
        JobTrial(open_trial(url, "s", hopeless.number, pruner)), lambda c: 2.0, lambda c: seeds
    )
    with pytest.raises(Pruned) as e:
        hook.on_epoch_end(1, 10, None, copies(2.0))
    assert e.value.epoch == 1
    trials = optuna.load_study(study_name="s", storage=url).trials
    assert trials[hopeless.number].state == TrialState.PRUNED
    assert trials[hopeless.number].user_attrs == seeds  # its seeds, recorded before it ended
    assert trials[fine.number].state == TrialState.RUNNING
    assert trials[fine.number].intermediate_values == {1: 0.8}


def test_the_default_pruner_waits_for_half_the_epochs_half_the_trials_and_no_progress(make_cfg):
    node = OmegaConf.to_container(make_cfg("search=gain").search.pruner)
    assert node["_target_"] == "optuna.pruners.PatientPruner"
    median = node["wrapped_pruner"]
    assert median["_target_"] == "optuna.pruners.MedianPruner"
    assert node["patience"] == median["n_warmup_steps"] == median["n_startup_trials"] == "auto"
    # what the sweeper gives each job: an eighth and half of its epochs, half of n_trials (>= 5)
    assert resolve_pruner(node, epochs=25, n_trials=20) == {
        "patience": 3,
        "wrapped_pruner.n_warmup_steps": 12,
        "wrapped_pruner.n_startup_trials": 10,
    }
    assert resolve_pruner(median, epochs=3, n_trials=6) == {
        "n_warmup_steps": 1,
        "n_startup_trials": 5,
    }
    # numbers given by the user stay; a pruner with no auto key passes through; null never prunes
    assert resolve_pruner({**median, "n_warmup_steps": 4}, 25, 20) == {"n_startup_trials": 10}
    assert resolve_pruner({"_target_": "optuna.pruners.HyperbandPruner"}, 25, 20) == {}
    assert resolve_pruner(None, 25, 20) == {}
    # an auto key the pruner has no argument for is dropped
    threshold = {**median, "_target_": "optuna.pruners.ThresholdPruner"}
    assert resolve_pruner(threshold, 25, 20) == {"n_warmup_steps": 12, "n_startup_trials": None}
    # the other presets of conf/search/pruner/
    assert make_cfg("search=gain", "search/pruner=median").search.pruner.n_warmup_steps == "auto"
    assert make_cfg("search=gain", "search/pruner=hyperband").search.pruner == {
        "_target_": "optuna.pruners.HyperbandPruner"
    }
    # a job handed a trial by hand, with auto left in, is told who sets it
    with pytest.raises(ConfigError, match="search.pruner.patience='auto' is invalid"):
        build_pruner(node)
    numbers = {
        "patience": 3,
        "wrapped_pruner": {**median, "n_warmup_steps": 12, "n_startup_trials": 10},
    }
    pruner = build_pruner({**node, **numbers})
    assert isinstance(pruner, optuna.pruners.PatientPruner)
    assert pruner._patience == 3 and pruner._wrapped_pruner._n_warmup_steps == 12


def test_optunas_info_lines_go_to_the_log_files_and_its_warnings_also_to_the_terminal(tmp_path):
    # the root logger as Hydra sets it for a job: the terminal and <job dir>/train.log
    root, terminal = logging.getLogger(), io.StringIO()
    handlers = [logging.StreamHandler(terminal), logging.FileHandler(tmp_path / "train.log")]
    saved = root.handlers[:]
    root.handlers = handlers
    try:
        route_optuna_logs()
        route_optuna_logs()  # twice: still one copy of each line
        optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}")
        logging.getLogger("optuna.study").warning("a warning")
    finally:
        root.handlers = saved
        for h in handlers:
            h.close()
    log = (tmp_path / "train.log").read_text()
    assert log.count("A new study created in RDB with name: s") == 1 and "a warning" in log
    assert terminal.getvalue() == "a warning\n"


# --- real searches through the CLI -----------------------------------------------------------


@pytest.mark.slow
def test_search_is_stored_in_sqlite_and_a_rerun_continues_it(tmp_path):
    args = ["-m", "search=gain_scale", "trainer.epochs=1"]
    first = search(tmp_path, *args, "hydra.sweeper.n_trials=2", sweep="first")
    assert first.returncode == 0, first.stderr
    trials = stored_trials(tmp_path, "default-gain_scale")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2

    # each job knows its trial, and returned what the study holds
    for t in trials:
        summary = json.loads((tmp_path / "first" / str(t.number) / "summary.json").read_text())
        assert summary["search"]["trial"] == t.number
        assert summary["objective"]["value"] == pytest.approx(t.value)

    # the results next to the sweeper's own optimization_results.yaml
    found = find_study_outputs(tmp_path / "first")
    assert set(found) == {"results", "study", "trials", "history", "slice", "importance"}
    rows = list(csv.DictReader(open(found["trials"])))
    assert [r["state"] for r in rows] == ["COMPLETE"] * 2
    assert {"value", "params_init.gain", "params_init.scale", "duration_s"} <= set(rows[0])

    # the same command again continues the study rather than starting over
    second = search(tmp_path, *args, "hydra.sweeper.n_trials=1", sweep="second")
    assert second.returncode == 0, second.stderr
    assert [t.number for t in stored_trials(tmp_path, "default-gain_scale")] == [0, 1, 2]
    assert (tmp_path / "second" / "2" / "summary.json").exists()  # job dir = trial number
    assert len(list(csv.DictReader(open(tmp_path / "second" / "optuna_trials.csv")))) == 3


@pytest.fixture(scope="module")
def graded_search(tmp_path_factory):
    """One grid search over three learning rates, in this order (the grid's seed 1 fixes it):
    0.3 trains, 1e30 diverges on every seed, 1e-6 is hopeless and the median pruner stops it."""
    tmp = tmp_path_factory.mktemp("graded")
    res = search(
        tmp,
        "-m",
        "search=optuna",
        "optimizer.lr=choice(0.3, 1e-6, 1e30)",
        "hydra/sweeper/sampler=grid",
        "hydra.sweeper.sampler.seed=1",
        "search/pruner=median",
        "search.pruner.n_startup_trials=1",
        "search.pruner.n_warmup_steps=1",
        "trainer.epochs=3",
    )
    trials = stored_trials(tmp, "default")
    return res, tmp, {t.params["optimizer.lr"]: t for t in trials}


@pytest.mark.slow
def test_a_trial_whose_seeds_all_diverge_stops_and_is_pruned(graded_search):
    res, tmp, by_lr = graded_search
    assert res.returncode == 0, res.stderr
    assert [by_lr[lr].number for lr in (0.3, 1e30, 1e-6)] == [0, 1, 2], "grid order changed"
    # recorded so that TPE learns from it (test_tpe_learns_where_trials_diverged), not FAIL
    diverged = by_lr[1e30]
    assert diverged.state == TrialState.PRUNED
    assert diverged.user_attrs["n_diverged"] == 1 and diverged.user_attrs["per_seed"] == {
        "0": None
    }
    # the job stopped after its first epoch of three and says why, not "finished"
    job = tmp / "sweep" / "1"
    summary = json.loads((job / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["n_diverged"] == 1
    assert summary["objective"]["value"] is None  # JSON has no NaN
    assert epochs_run(job) == 1 < epochs_run(tmp / "sweep" / "0") == 3
    assert (tmp / "sweep" / "optimization_results.yaml").read_text().count("optimizer.lr: 0.3")


def test_tpe_learns_where_trials_diverged():
    """TPE ranks pruned trials behind every completed one, and ignores failed ones: 10 trials
    diverged for x > 0.5; recorded PRUNED, the next 20 samples mostly avoid that region."""

    def share_sampled_high(state: TrialState) -> float:
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
        dist = optuna.distributions.FloatDistribution(0.0, 1.0)
        for i in range(20):
            x = (i + 0.5) / 20
            if x < 0.5:
                trial = optuna.create_trial(params={"x": x}, distributions={"x": dist}, value=x)
            else:
                trial = optuna.create_trial(
                    params={"x": x}, distributions={"x": dist}, state=state
                )
            study.add_trial(trial)
        xs = []
        for _ in range(20):
            t = study.ask({"x": dist})
            xs.append(t.params["x"])
            study.tell(
                t,
                t.params["x"] if t.params["x"] < 0.5 else None,
                state=None if t.params["x"] < 0.5 else state,
            )
        return sum(x >= 0.5 for x in xs) / len(xs)

    assert share_sampled_high(TrialState.PRUNED) <= 0.2 < share_sampled_high(TrialState.FAIL)


@pytest.mark.slow
def test_pruner_stops_a_hopeless_trial_early(graded_search):
    res, tmp, by_lr = graded_search
    assert res.returncode == 0, res.stderr
    assert by_lr[0.3].state == TrialState.COMPLETE
    # the hopeless trial is pruned after its first epoch, in the study and in its summary
    assert by_lr[1e-6].state == TrialState.PRUNED
    assert by_lr[1e-6].last_step == 1
    job = tmp / "sweep" / str(by_lr[1e-6].number)
    summary = json.loads((job / "summary.json").read_text())
    assert summary["status"] == "pruned" and summary["search"]["pruned_epoch"] == 1
    assert epochs_run(job) == 1 < epochs_run(tmp / "sweep" / "0") == 3
    # pruned and diverged trials are in the CSV (with their seeds) and the plots
    rows = {r["number"]: r for r in csv.DictReader(open(tmp / "sweep" / "optuna_trials.csv"))}
    assert [rows[n]["state"] for n in "012"] == ["COMPLETE", "PRUNED", "PRUNED"]
    assert [rows[n]["n_diverged"] for n in "012"] == ["0", "1", "0"]
    assert json.loads(rows["0"]["per_seed"])["0"] == pytest.approx(float(rows["0"]["value"]))
    assert (tmp / "sweep" / "optuna_history.png").stat().st_size > 10_000


@pytest.mark.slow
def test_report_of_a_search_shows_its_trials_and_plots(graded_search):
    from initsweep.report import make_report

    _, tmp, _ = graded_search
    result = make_report(tmp / "sweep", tmp / "report")
    titles = [s.title for s in result.sections]
    # the search's own outputs appear in the report, copied next to its page
    assert "Optuna search" in titles
    assert (tmp / "report" / "optuna_history.png").stat().st_size > 10_000
    page = result.index.read_text()
    assert 'src="optuna_slice.png"' in page and 'href="optuna_trials.csv"' in page
    assert "optimizer.lr" in result.text  # the best parameters, printed
    # how many trials were pruned, after which epochs, as the end of the search said it
    assert PRUNED_LINE in result.text and html.escape(PRUNED_LINE) in page
    assert "Left out: 1 pruned trial (after epoch 1 (1 trial))." in page  # trials across seeds


PRUNED_LINE = "2 pruned: 1 by the pruner after epoch 1 (1 trial), 1 because every seed diverged"


@pytest.mark.slow
def test_the_end_of_a_search_says_what_was_pruned_and_logs_optunas_lines(graded_search):
    res, tmp, _ = graded_search
    assert PRUNED_LINE in res.stdout
    record = yaml.safe_load((tmp / "sweep" / "optuna_study.yaml").read_text())
    assert record["pruned"] == {
        "by_pruner": 1,
        "after_epoch": {1: 1},
        "diverged": 1,
        "line": PRUNED_LINE,
    }
    # Optuna's INFO lines ("[I <time>] A new study created", "Skipped telling trial") are
    # bookkeeping: in the sweep's search.log with the sweeper's own, not on the terminal
    assert not [ln for ln in (res.stdout + res.stderr).splitlines() if ln.startswith("[I ")]
    log = (tmp / "sweep" / "search.log").read_text()
    assert "A new study created in RDB" in log and "Skipped telling trial" in log
    assert "Pruner MedianPruner(n_startup_trials=1, n_warmup_steps=1)" in log
    assert "3/3 trials done" in log


# --- the seeds of a search ---------------------------------------------------------------------


def seeded_trial(number: int, gain: float, values: dict[int, float]) -> optuna.trial.FrozenTrial:
    dist = optuna.distributions.FloatDistribution(0.1, 10, log=True)
    per_seed = {s: v for s, v in values.items()}
    trial = optuna.create_trial(
        params={"init.gain": gain},
        distributions={"init.gain": dist},
        value=sum(values.values()) / len(values),
        user_attrs=seed_attrs(per_seed, 0),
    )
    trial.number = number
    return trial


def test_top_trials_are_tested_against_the_best_across_seeds():
    base = {0: 0.160, 1: 0.170, 2: 0.150, 3: 0.165, 4: 0.155}
    trials = [
        seeded_trial(0, 1.41, base),
        seeded_trial(
            1,
            1.60,
            {s: v + d for (s, v), d in zip(base.items(), (0.004, -0.003, 0.002, 0.001, -0.002))},
        ),
        seeded_trial(
            2, 0.50, {s: v + 0.05 + 0.001 * s for s, v in base.items()}
        ),  # worse on every seed
        seeded_trial(
            3, 1.20, {s: v + 0.002 for s, v in base.items()}
        ),  # the same shift: no spread
        seeded_trial(4, 2.00, {0: 0.2, 1: 0.25, 5: 0.18}),  # other seeds: Welch's test
    ]
    top = compare_top(trials, minimize=True)
    rows = {r.number: r for r in top.rows}
    assert top.best == 0 and rows[0].how == "best"
    # the references: scipy's paired and Welch t-tests, Holm over the three p-values
    values = [list(per_seed(t).values()) for t in trials]
    raw = {
        1: stats.ttest_rel(values[1], values[0]).pvalue,
        2: stats.ttest_rel(values[2], values[0]).pvalue,
        4: stats.ttest_ind(values[4], values[0], equal_var=False).pvalue,
    }
    order = sorted(raw, key=raw.get)
    holm, running = {}, 0.0
    for i, n in enumerate(order):
        running = max(running, min(1.0, (len(order) - i) * raw[n]))
        holm[n] = running
    for n in raw:
        assert rows[n].p == pytest.approx(holm[n])
    assert [rows[n].how for n in (1, 2, 3, 4)] == ["paired", "paired", "no spread", "welch"]
    assert rows[1].apart is False and rows[2].apart is True and rows[3].apart is True
    assert rows[1].se == pytest.approx(statistics.stdev(values[1]) / math.sqrt(5))
    assert top.test == "paired or Welch's t-test"
    assert top.line.startswith("init.gain 1.41–2 (trials #0, #1, #4): cannot be told apart")
    assert "at 3–5 seeds" in top.line


def test_below_three_seeds_nothing_is_tested():
    top = compare_top([seeded_trial(0, 1.0, {0: 0.1}), seeded_trial(1, 2.0, {0: 0.2})], True)
    assert top.line.startswith("at 1 seed per trial the top trials cannot be told apart")
    assert not any(r.apart for r in top.rows)
    two = compare_top(
        [seeded_trial(0, 1.0, {0: 0.1, 1: 0.11}), seeded_trial(1, 2.0, {0: 0.5, 1: 0.6})], True
    )
    assert "at 2 seeds per trial" in two.line and "needs 3 or more" in two.line


@pytest.mark.slow
def test_a_gain_search_keeps_the_seeds_and_names_its_objective(tmp_path):
    res = search(
        tmp_path,
        "-m",
        "search=gain",
        "seeds=[0,1,2]",
        "trainer.epochs=1",
        "hydra.sweeper.n_trials=3",
        "search.pruner=null",
    )
    assert res.returncode == 0, res.stderr
    study = optuna.load_study(
        study_name="default-gain", storage=f"sqlite:///{tmp_path / 'study.db'}"
    )
    assert study.metric_names == ["val/loss"]  # optuna-dashboard's label, not "Objective 0"
    for t in study.trials:
        assert set(t.user_attrs["per_seed"]) == {"0", "1", "2"} and t.user_attrs["n"] == 3
        assert t.user_attrs["mean"] == pytest.approx(t.value)
    assert "± s.e." in res.stdout
    assert "cannot be told apart" in res.stdout or "differs from the next" in res.stdout
    record = yaml.safe_load((tmp_path / "sweep" / "optuna_study.yaml").read_text())
    assert record["top_trials"]["line"] in res.stdout
    from initsweep.report import make_report

    assert record["top_trials"]["line"] in make_report(tmp_path / "sweep", tmp_path / "r").text
