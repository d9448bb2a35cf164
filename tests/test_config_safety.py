"""Configs are code: a config (an override, a preset in a user's --config-dir) cannot run code.

Each attack below once ran with exit code 0: through ``hydra.callbacks`` a config reached a
submitit helper that runs a shell line, one that unpickles any file, and an initsweep helper that
empties every ``*.jsonl`` of another directory. Now each is refused in one whole line and runs
nothing; the user's own package is allowed with ``allow_targets`` or INITSWEEP_ALLOW_TARGETS.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from initsweep.config import CONF_DIR, HYDRA_TARGETS, TARGETS, TRACKER_TARGETS
from initsweep.errors import ConfigError
from initsweep.job import run
from initsweep.targets import ENV, find_targets, matches, shipped_targets, user_patterns
from tests.conftest import run_cli

QUICK = ["trainer.epochs=1", "trainer.progress=false", "dataset.limit=200", "seeds=[0]"]


class _Payload:
    """Unpickling this creates ``marker``: what a crafted pickle file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _victim(tmp_path: Path) -> Path:
    """Another study's job dir, whose metrics must survive."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "metrics.jsonl").write_text('{"seed": 0, "step": 1, "train/loss": 1.0}\n')
    return victim


def _refused_in_one_line(res, key: str, target: str) -> None:
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if "[INFO]" not in ln]
    assert len(lines) == 1, res.stderr  # one line, no traceback
    assert lines[0].startswith(f"initsweep: error: {key}={target!r} is not allowed:")
    assert lines[0].endswith("cannot be allowed)") or lines[0].endswith("cannot be allowed")


@pytest.mark.slow
def test_a_callback_cannot_run_a_shell_line(tmp_path):
    marker = tmp_path / "marker"
    res = run_cli(
        *QUICK,
        "+hydra.callbacks.x._target_=submitit.helpers.run_cmd",
        f"+hydra.callbacks.x.str_args='touch {marker}'",
        "+hydra.callbacks.x.shell=true",
        f"hydra.run.dir={tmp_path}/run",
    )
    _refused_in_one_line(res, "hydra.callbacks.x._target_", "submitit.helpers.run_cmd")
    assert "INITSWEEP_ALLOW_TARGETS=" in res.stderr  # how to allow one's own callback
    assert not marker.exists()
    assert not (tmp_path / "run").exists()  # refused before Hydra wrote anything


@pytest.mark.slow
def test_a_callback_cannot_unpickle_a_file(tmp_path):
    marker, crafted = tmp_path / "marker", tmp_path / "crafted.pkl"
    crafted.write_bytes(pickle.dumps(_Payload(marker)))
    res = run_cli(
        *QUICK,
        "+hydra.callbacks.x._target_=submitit.core.utils.pickle_load",
        f"+hydra.callbacks.x.filename={crafted}",
        f"hydra.run.dir={tmp_path}/run",
    )
    _refused_in_one_line(res, "hydra.callbacks.x._target_", "submitit.core.utils.pickle_load")
    assert not marker.exists()


@pytest.mark.slow
def test_a_callback_cannot_empty_another_dirs_logs(tmp_path):
    victim = _victim(tmp_path)
    res = run_cli(
        *QUICK,
        "+hydra.callbacks.x._target_=initsweep.train.checkpoint.truncate_logs",
        f"+hydra.callbacks.x.output_dir={victim}",
        "+hydra.callbacks.x.step=-1",
        f"hydra.run.dir={tmp_path}/run",
    )
    _refused_in_one_line(
        res, "hydra.callbacks.x._target_", "initsweep.train.checkpoint.truncate_logs"
    )
    assert (victim / "metrics.jsonl").read_text().count("\n") == 1


@pytest.mark.slow
def test_hydras_own_refusal_is_one_whole_line(tmp_path):
    # subprocess.run is refused by Hydra itself (never whitelistable); its message spans lines
    res = run_cli(
        *QUICK, "+hydra.callbacks.x._target_=subprocess.run", f"hydra.run.dir={tmp_path}"
    )
    _refused_in_one_line(res, "hydra.callbacks.x._target_", "subprocess.run")


def test_a_job_config_cannot_reach_initsweeps_helpers(make_cfg, tmp_path):
    victim = _victim(tmp_path)
    cfg = make_cfg(
        *QUICK,
        "dataset._target_=initsweep.train.checkpoint.truncate_logs",
        f"+dataset.output_dir={victim}",
        "+dataset.step=-1",
        output_dir=tmp_path / "run",
    )
    with pytest.raises(ConfigError, match=r"^dataset._target_='initsweep.train.checkpoint"):
        run(cfg)
    assert (victim / "metrics.jsonl").read_text().count("\n") == 1


def test_a_nested_target_is_checked_too(make_cfg, tmp_path):
    marker = tmp_path / "marker"
    cfg = make_cfg(
        *QUICK,
        "+model.activation={_target_: os.system, command: 'touch " + str(marker) + "'}",
    )
    with pytest.raises(ConfigError, match=r"model.activation._target_='os.system' is not allowed"):
        run(cfg)
    assert not marker.exists()


@pytest.mark.parametrize(
    "pattern",
    ["*", "os.*", "subprocess", "builtins.eval", "shutil.rmtree", "pickle.*", "importlib.*"]
    + [
        "ctypes.*",
        "socket.*",
        "sys.*",
        "initsweep.*",
        "submitit.*",
        "torch.*",
        "hydra.*",
        "my.*x",
    ],
)
def test_no_pattern_lets_the_dangerous_modules_through(pattern):
    with pytest.raises(ConfigError) as err:
        user_patterns([pattern], environ={})
    assert str(err.value).startswith(f"allow_targets={pattern!r} is invalid:")
    with pytest.raises(ConfigError) as err:
        user_patterns([], environ={ENV: f"my_project.*,{pattern}"})
    assert str(err.value).startswith(f"{ENV}={pattern!r} is invalid:")


def test_allow_targets_refuses_a_dangerous_pattern_before_any_work(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"allow_targets='os\.\*' is invalid"):
        run(make_cfg(*QUICK, "allow_targets=[os.*]"))
    assert list(tmp_path.iterdir()) == []


def _user_project(tmp_path: Path, monkeypatch) -> None:
    """A researcher's own package with a dataset builder (and an ``os`` it imported)."""
    pkg = tmp_path / "project" / "my_project"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data.py").write_text(
        "import os  # noqa: F401\n"
        "from initsweep.data.embedded import digits\n\n"
        "def tiny(**kwargs):  # the user's own builder\n"
        "    return digits(**kwargs)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "project"))
    monkeypatch.delenv(ENV, raising=False)


def test_a_users_package_is_refused_until_allowed(make_cfg, tmp_path, monkeypatch):
    _user_project(tmp_path, monkeypatch)
    node = ["dataset._target_=my_project.data.tiny", *QUICK]
    with pytest.raises(ConfigError) as err:
        run(make_cfg(*node, output_dir=tmp_path / "refused"))
    assert "allow_targets: [my_project.*]" in str(err.value)
    run(make_cfg(*node, "allow_targets=[my_project.*]", output_dir=tmp_path / "config"))
    monkeypatch.setenv(ENV, "my_project.data.tiny")
    run(make_cfg(*node, output_dir=tmp_path / "env"))
    for d in ("config", "env"):
        assert json.loads((tmp_path / d / "summary.json").read_text())["status"] == "finished"


def test_an_allowed_package_cannot_alias_a_dangerous_function(make_cfg, tmp_path, monkeypatch):
    # my_project.data imports os: my_project.data.os.system resolves to os.system (Hydra checks
    # what a name resolves to, not only the name)
    _user_project(tmp_path, monkeypatch)
    marker = tmp_path / "marker"
    cfg = make_cfg(
        *QUICK,
        "allow_targets=[my_project.*]",
        "dataset._target_=my_project.data.os.system",
        f"+dataset.command='touch {marker}'",
    )
    with pytest.raises(
        ConfigError,
        match=r"^dataset._target_='my_project.data.os.system' \(that is os.system\) is not allowed",
    ):
        run(cfg)
    assert not marker.exists()


def test_every_target_initsweep_ships_is_allowed_where_it_is_built():
    # an independent walk: each yaml's _target_s, by the group the file is in
    by_group: dict[str, set] = {}
    for path in CONF_DIR.rglob("*.yaml"):
        group = path.parent.relative_to(CONF_DIR).parts[0] if path.parent != CONF_DIR else ""
        for _, target in find_targets(yaml.safe_load(path.read_text()) or {}, path.stem):
            by_group.setdefault(group, set()).add(target)
    assert {"initsweep.data.embedded.digits", "initsweep.models.MLP", "torch.optim.SGD"} <= (
        by_group["dataset"] | by_group["model"] | by_group["optimizer"]
    )
    for group in ("dataset", "model", "optimizer", "experiment"):
        required = {"???"}  # dataset=torch_dataset's train._target_: the user's own Dataset class
        assert all(matches(t, TARGETS) for t in by_group.get(group, set()) - required), group
    # a job's data, model and optimizer cannot build a tracker, nor a tracker anything else
    assert by_group["tracker"] and set(TRACKER_TARGETS) == by_group["tracker"]
    assert not any(matches(t, TARGETS) for t in by_group["tracker"])
    assert not any(matches(t, TRACKER_TARGETS) for t in by_group["dataset"])
    # Hydra builds the callback train.yaml names; the launchers and pruner are no job's
    assert HYDRA_TARGETS == ["initsweep.cli.OutputDirCheck"]
    for t in by_group["hydra"] | by_group["search"]:
        assert not matches(t, TARGETS) and not matches(t, TRACKER_TARGETS)


def test_a_new_model_is_allowed_by_its_yaml_alone(tmp_path):
    # the allow-list is the shipped configs' targets: a model's yaml (and an experiment naming
    # one) is all it takes, each landing at the key its package says
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf, ignore=shutil.ignore_patterns("local"))
    (conf / "model" / "tiny.yaml").write_text("_target_: initsweep.models.tiny.Tiny\n")
    (conf / "experiment" / "own.yaml").write_text(
        "# @package _global_\nmodel:\n  norm: {_target_: initsweep.models.tiny.Norm}\n"
    )
    found = shipped_targets(conf)
    assert ("model._target_", "initsweep.models.tiny.Tiny") in found
    assert ("model.norm._target_", "initsweep.models.tiny.Norm") in found
    assert set(found) - set(shipped_targets(CONF_DIR)) == {
        ("model._target_", "initsweep.models.tiny.Tiny"),
        ("model.norm._target_", "initsweep.models.tiny.Norm"),
    }


def test_the_package_patterns_left_are_torchs_classes():
    # everything else is allowed by full name: no initsweep.*, torchvision.*, submitit.* ...
    assert [p for p in TARGETS if p.endswith(".*")] == [
        "torch.optim.*",
        "torch.nn.*",
        "torchvision.models.*",
    ]
    assert sys.modules["initsweep.config"].HYDRA_TARGETS == ["initsweep.cli.OutputDirCheck"]


@pytest.mark.slow
def test_the_environment_variable_allows_a_users_own_callback(tmp_path):
    pkg = tmp_path / "project" / "my_project"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "callbacks.py").write_text(
        "from pathlib import Path\n"
        "from hydra.experimental.callback import Callback\n\n"
        "class Marker(Callback):\n"
        "    def __init__(self, path):\n"
        "        self.path = path\n\n"
        "    def on_run_start(self, config, **kwargs):\n"
        "        Path(self.path).write_text('ran')\n"
    )
    marker = tmp_path / "marker"
    args = [
        *QUICK,
        "+hydra.callbacks.mine._target_=my_project.callbacks.Marker",
        f"+hydra.callbacks.mine.path={marker}",
    ]
    env = {
        "PYTHONPATH": os.pathsep.join(
            [str(tmp_path / "project"), os.environ.get("PYTHONPATH", "")]
        )
    }
    refused = run_cli(*args, f"hydra.run.dir={tmp_path}/a", env=env)
    _refused_in_one_line(refused, "hydra.callbacks.mine._target_", "my_project.callbacks.Marker")
    assert not marker.exists()
    allowed = run_cli(*args, f"hydra.run.dir={tmp_path}/b", env={**env, ENV: "my_project.*"})
    assert allowed.returncode == 0, allowed.stderr
    assert marker.read_text() == "ran"
