"""W&B tracking, read back from W&B's own offline run files with ``wandb leet inspect --json``."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import initsweep.job as job
import initsweep.job.runner as runner
from initsweep.errors import ConfigError
from initsweep.files import read_jsonl
from initsweep.report import table
from initsweep.report.jobs import load_study
from initsweep.track.base import TrackedJob
from initsweep.track.naming import RunLayout
from initsweep.track.wandb import WandbTracker, run_id
from tests.conftest import run_cli

WANDB = str(Path(sys.executable).parent / "wandb")
TINY = ["seeds=[0,1]", "trainer.epochs=2", "model.hidden=[16]"]
LAYOUT = RunLayout(study="s", arm="defaults", group="g", label="x")


def inspect(run_dir: Path) -> list[dict]:
    """Every record of one offline run, as W&B's own reader prints them."""
    res = subprocess.run(
        [WANDB, "leet", "inspect", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def of_type(records: list[dict], kind: str) -> list[dict]:
    return [r[kind] for r in records if r["type"] == kind]


def runs_by_seed(job_dir: Path) -> dict[int, list[dict]]:
    runs = {}
    for d in sorted((job_dir / "wandb").glob("offline-run-*")):
        records = inspect(d)
        runs[of_type(records, "run")[0]["config"]["update"]["seed"]] = records
    return runs


def final_summary(records: list[dict]) -> dict:
    out: dict = {}
    for s in of_type(records, "summary"):
        out.update(s["update"])
    return out


def history(records: list[dict]) -> dict[int, dict]:
    return {h["item"]["_step"]: h["item"] for h in of_type(records, "history")}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The issue's first "done when" sweep, tiny: 2 schemes x 2 gains, 2 seeds, tracker=wandb
    (with gradients and a tag); every job's runs read back."""
    root = tmp_path_factory.mktemp("wandb_sweep") / "multirun" / "2026-11-22" / "12-00-00"
    res = run_cli(
        "-m",
        "init=kaiming_normal,xavier_uniform",
        "init.gain=1.0,1.5",
        *TINY,
        "tracker=wandb",
        "tracker.gradients=true",
        "tags=[test]",
        "trainer.progress=false",
        f"hydra.sweep.dir={root}",
    )
    assert res.returncode == 0, res.stderr
    (root / "cli.out").write_text(res.stdout + res.stderr)  # what the user saw
    return root, {d: runs_by_seed(d) for d in sorted(root.glob("[0-9]"))}


def wandb_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("wandb:")]


@pytest.mark.slow
def test_wandb_prints_nothing_of_its_own_by_default(sweep):
    # 8 runs used to print 3 `wandb:` lines each; our one line per job says where they are
    root, jobs = sweep
    output = (root / "cli.out").read_text()
    assert wandb_lines(output) == []
    assert output.count("W&B: 2 offline runs in") == 4
    assert sum(len(by_seed) for by_seed in jobs.values()) == 8  # the runs are all there


@pytest.mark.slow
def test_quiet_false_gives_wandbs_own_lines_back(tmp_path):
    # a process of its own: W&B sets its terminal up once per process, from its first run
    res = run_cli("tracker=wandb", "tracker.wandb.quiet=false", "seeds=[0]", *TINY[1:],
                  "trainer.progress=false", f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = wandb_lines(res.stdout + res.stderr)
    assert len(lines) == 3, lines
    assert any("saved locally" in line for line in lines)


@pytest.mark.slow
def test_a_sweep_gives_one_group_per_arm_and_a_distinct_name_per_run(sweep):
    root, jobs = sweep
    runs = [
        (job_dir, seed, of_type(records, "run")[0])
        for job_dir, by_seed in jobs.items()
        for seed, records in by_seed.items()
    ]
    assert len(runs) == 8
    # 4 groups of 2: each arm's seeds, so W&B's default grouping draws one band per arm
    groups = Counter(run["run_group"] for _, _, run in runs)
    assert sorted(groups.values()) == [2, 2, 2, 2]
    expected = {
        f"init={i},gain={g},s{s}"
        for i in ("kaiming_normal", "xavier_uniform")
        for g in ("1.0", "1.5")
        for s in (0, 1)
    }
    assert {run["display_name"] for _, _, run in runs} == expected  # 8 distinct names
    for job_dir, seed, run in runs:
        config = run["config"]["update"]
        i, g = config["init"]["name"], config["init"]["gain"]
        # the group: the arm's overrides as given (swept first; no seeds, trackers, tags or
        # progress) and the sweep's <date>/<time>
        arm = f"init={i},init.gain={g:.1f},trainer.epochs=2,model.hidden=[16]"
        assert run["run_group"] == f"{arm} @ 2026-11-22/12-00-00"
        assert run["job_type"] == "default:2026-11-22/12-00-00"  # the study: one sweep
        # the runs table can filter and group by any of these
        assert config["seed"] == seed and config["study"] == run["job_type"]
        assert config["arm"] == arm
        assert config["varying"] == {"init": i, "init.gain": g}
        assert run["tags"] == ["test"]
        assert run["run_id"] == run_id(job_dir, seed)  # stable: a resumed job continues it


@pytest.mark.slow
def test_history_holds_every_metrics_jsonl_scalar_at_its_step(sweep):
    root, jobs = sweep
    job_dir = root / "0"
    metrics = read_jsonl(job_dir / "metrics.jsonl")
    for seed, records in jobs[job_dir].items():
        rows = history(records)
        for r in (r for r in metrics if r["seed"] == seed):
            row = rows[r["step"]]
            for key, value in r.items():
                if key != "seed":  # step and epoch too: the x axes
                    assert row[key] == pytest.approx(value), (seed, r["step"], key)
        assert of_type(records, "exit")[0]["exit_code"] == 0


@pytest.mark.slow
def test_step_is_the_x_axis_and_summaries_keep_the_best_and_the_last(sweep):
    root, jobs = sweep
    job_dir = root / "0"
    metrics = read_jsonl(job_dir / "metrics.jsonl")
    for seed, records in jobs[job_dir].items():
        defined = {m.get("name") or m.get("glob_name"): m for m in of_type(records, "metric")}
        assert defined["*"]["step_metric"] == "step"
        assert defined["val/loss"]["summary"] == {"min": True, "last": True}
        assert defined["train/loss"]["summary"] == {"min": True, "last": True}
        assert defined["val/acc"]["summary"] == {"max": True, "last": True}
        summary = final_summary(records)
        losses = [r["val/loss"] for r in metrics if r["seed"] == seed and "val/loss" in r]
        accs = [r["val/acc"] for r in metrics if r["seed"] == seed and "val/acc" in r]
        assert summary["val/loss"]["min"] == pytest.approx(min(losses))
        assert summary["val/loss"]["last"] == pytest.approx(losses[-1])
        assert summary["val/acc"]["max"] == pytest.approx(max(accs))


@pytest.mark.slow
def test_histograms_at_init_and_every_epoch_gradients_after_each_epoch(sweep):
    root, jobs = sweep
    job_dir = root / "0"
    init = json.loads((job_dir / "init.json").read_text())
    val_steps = sorted(
        {r["step"] for r in read_jsonl(job_dir / "metrics.jsonl") if "val/loss" in r}
    )
    grads = {
        (h["seed"], h["step"]): h
        for h in read_jsonl(job_dir / "histograms.jsonl")
        if h["kind"] == "gradient" and h["name"] == "body.1.weight"
    }
    for seed, records in jobs[job_dir].items():
        rows = history(records)
        hist_steps = sorted(s for s, row in rows.items() if "weights/out.weight._type" in row)
        # step 0 and the end of each of the 2 epochs (histogram_every=1)
        assert hist_steps == val_steps and len(hist_steps) == 3
        row = rows[0]
        for key in ("weights/body.1.weight", "weights/out.bias", "activations/body.1"):
            assert row[f"{key}._type"] == "histogram"
            assert sum(row[f"{key}.values"]) > 0
        # the weight histogram counts every entry of the 16 x 64 matrix
        assert sum(row["weights/body.1.weight.values"]) == 16 * 64
        # step-0 diagnostics: expected vs measured loss, per-layer std
        expected = next(s for s in init["seeds"] if s["seed"] == seed)
        assert row["init/expected_loss"] == pytest.approx(expected["expected_loss"])
        assert row["init/measured_loss"] == pytest.approx(expected["measured_loss"])
        assert row["weight_std/body.1.weight"] > 0
        # gradients (tracker.gradients=true): none before the first step, then at each epoch
        assert not any(k.startswith(("gradients/", "grad_norm/")) for k in row)
        for step in hist_steps[1:]:
            assert rows[step]["gradients/body.1.weight._type"] == "histogram"
            assert sum(rows[step]["gradients/body.1.weight.values"]) == 16 * 64
            h = grads[seed, step]  # the same gradient in histograms.jsonl
            norm = math.sqrt(sum(h["counts"]) * (h["std"] ** 2 + h["mean"] ** 2))
            assert rows[step]["grad_norm/body.1.weight"] == pytest.approx(norm) and norm > 0


@pytest.mark.slow
def test_summary_holds_finals_divergence_objective_and_a_finals_table(sweep):
    root, jobs = sweep
    job_dir = root / "0"
    summary = json.loads((job_dir / "summary.json").read_text())
    for entry in summary["seeds"]:
        run_summary = final_summary(jobs[job_dir][entry["seed"]])
        assert run_summary["diverged"] is False
        assert run_summary["final"] == pytest.approx(entry["metrics"])
        assert run_summary["objective"]["value"] == pytest.approx(summary["objective"]["value"])
        assert run_summary["finals._type"] == "table-file"
        (run_dir,) = [
            d
            for d in (job_dir / "wandb").glob("offline-run-*")
            if d.name.endswith(run_id(job_dir, entry["seed"]))
        ]
        (path,) = (run_dir / "files" / "media" / "table").glob("finals_*.table.json")
        finals = json.loads(path.read_text())
        metrics = sorted(entry["metrics"])
        assert finals["columns"] == ["seed", "diverged", *metrics]
        assert finals["data"] == [
            [entry["seed"], False, *(pytest.approx(entry["metrics"][m]) for m in metrics)]
        ]


@pytest.mark.slow
def test_tags_reach_summary_json_and_the_report(sweep):
    root, _ = sweep
    for job_dir in sorted(root.glob("[0-9]")):
        assert json.loads((job_dir / "summary.json").read_text())["tags"] == ["test"]
    study = load_study(root)
    assert study.tags == ["test"]
    assert "| tags " in table.render(study, table.rows(study), "markdown")
    assert [row["tags"] for row in table.rows(study)] == ["test"] * 4


@pytest.mark.slow
def test_every_run_of_a_preset_sweep_has_its_own_name(tmp_path):
    # the second "done when": orthogonal_gain_twin sweeps hydra.sweeper.params
    res = run_cli(
        "-m",
        "experiment=orthogonal_gain_twin",
        "tracker=wandb",
        "seeds=[0]",
        "trainer.epochs=1",
        "model.depth=2",
        "dataset.limit=300",
        "trainer.progress=false",
        f"hydra.sweep.dir={tmp_path}/sweep",
    )
    assert res.returncode == 0, res.stderr
    names = []
    for job_dir in sorted((tmp_path / "sweep").glob("[0-9]")):
        (records,) = runs_by_seed(job_dir).values()
        names.append(of_type(records, "run")[0]["display_name"])
    assert sorted(names) == sorted(
        f"activation={a},gain={g},s0"
        for a in ("tanh", "relu")
        for g in ("0.5", "1.0", "1.4142", "1.6667", "2.0")
    )


@pytest.mark.slow
def test_runs_finish_with_exit_code_1_when_the_job_fails(make_cfg, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("training blew up")

    monkeypatch.setattr(runner, "fit", boom)  # a failure after the runs have started
    with pytest.raises(RuntimeError, match="blew up"):
        job.run(make_cfg("tracker=wandb", "tracker.wandb.mode=offline", *TINY))
    runs = runs_by_seed(tmp_path)
    assert sorted(runs) == [0, 1]
    for seed, records in runs.items():
        # the run was closed (not left dangling) and marked failed
        assert of_type(records, "exit")[0]["exit_code"] == 1
        assert "init/expected_loss" in of_type(records, "history")[0]["item"]
        # outside a Hydra app no overrides are known: the study's name names the runs
        assert of_type(records, "run")[0]["display_name"] == f"default,s{seed}"
    assert not (tmp_path / "summary.json").exists()


def test_mode_comes_from_wandb_mode_unless_set(make_cfg, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert make_cfg("tracker=wandb").tracker.wandb.mode == "disabled"
    assert make_cfg("tracker=wandb", "tracker.wandb.mode=offline").tracker.wandb.mode == "offline"
    monkeypatch.delenv("WANDB_MODE")
    assert make_cfg("tracker=wandb").tracker.wandb.mode == "offline"


def test_disabled_mode_writes_no_run(tmp_path):
    t = WandbTracker(TrackedJob(tmp_path, (0,), LAYOUT), mode="disabled")
    t.log_metrics([{"seed": 0, "step": 0, "epoch": 0, "train/loss": 1.0}])
    t.finish()
    assert not list(tmp_path.glob("wandb/offline-run-*"))


def test_unknown_mode_is_one_config_error(tmp_path):
    match = r"tracker.wandb.mode='sometimes'.*offline, online, disabled"
    with pytest.raises(ConfigError, match=match):
        WandbTracker(TrackedJob(tmp_path, (0,), LAYOUT), mode="sometimes")
