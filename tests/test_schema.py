"""The config's meaning lives on its schemas: the key lists are derived from field metadata, the
bias values from the bias registry, the trackers' schemas from their classes."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from typing import Any, Optional

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException

import initsweep.config as config
from initsweep.errors import ConfigError, compose_error
from initsweep.init import list_bias_rules
from initsweep.job import job_spec, run
from initsweep.job.build import make_trackers
from initsweep.report.jobs import BOOKKEEPING
from initsweep.schema import key, keys_where
from initsweep.track.wandb import WandbTracker
from initsweep.train.optim import PER_COPY

QUICK = ["trainer.epochs=1", "trainer.progress=false", "seeds=[0]", "dataset.limit=200"]


@dataclass
class _Inner:
    a: int = key(0, volatile=True)
    b: int = 0


@dataclass
class _Parts:
    lr: float = key(per_job=True)


@dataclass
class _Outer:
    whole: _Inner = key(factory=_Inner, volatile=True)
    maybe: Optional[_Inner] = None  # noqa: UP045
    loose: Any = key(None, parts=_Parts)
    plain: int = 1


def test_a_flagged_node_covers_its_keys_and_unflagged_nodes_are_searched():
    # whole is volatile as a node; maybe is searched through Optional; loose through its parts
    assert keys_where(_Outer, "volatile") == ("whole", "maybe.a")
    assert keys_where(_Outer, "per_job") == ("loose.lr",)
    # a volatile key is never part of an arm's name unless it says so
    assert keys_where(_Outer, "arm", False) == ("whole", "maybe.a")
    with pytest.raises(ValueError, match="unknown meaning 'volatil'"):
        keys_where(_Outer, "volatil")


def test_the_derived_lists_hold_what_resume_stacking_and_naming_rely_on():
    # resume: where a job logs and how it shows progress, never what it computes
    assert set(config.VOLATILE) == {
        "allow_targets", "paths", "report", "resources", "tracker", "tags",
        "trainer.progress", "trainer.device", "trainer.eval_batch_size",
        "trainer.checkpoint_every",
    }  # fmt: skip
    assert not {"trainer.epochs", "init", "optimizer", "seeds"} & set(config.VOLATILE)
    # stacking: what a job's copies do before training, and how its numbers are summed up
    assert set(config.PER_JOB) == {
        "seeds", "init", "bias", "name", "objective", "tracker", "paths", "search",
        "trainer.on_diverge", "trainer.diverge_penalty", "trainer.progress",
        "optimizer.lr", "optimizer.momentum", "optimizer.weight_decay",
    }  # fmt: skip
    # naming: seeds are runs of an arm; volatile keys and the search's bookkeeping name none
    assert set(config.NOT_ARM) == {*config.VOLATILE, "seeds", "name", "search", "hydra"}
    assert BOOKKEEPING == ("search.study_name", "search.storage", "search.trial")
    assert config.FILE_NAMES == ("name", "search.study_name")


def test_the_optimizers_per_job_numbers_are_those_a_stacked_optimizer_steps_per_copy():
    per_job = {k.removeprefix("optimizer.") for k in config.PER_JOB if k.startswith("optimizer.")}
    assert per_job == set(PER_COPY)


def test_bias_values_are_the_bias_registrys_rules():
    assert [b.value for b in config.OutputBias] == list_bias_rules("output")
    assert [b.value for b in config.HiddenBias] == list_bias_rules("hidden")


def test_a_trackers_schema_is_its_classs_keyword_arguments():
    schema = config.WandbTrackerConfig
    params = inspect.signature(WandbTracker).parameters.values()
    keyword = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
    assert [f.name for f in dataclasses.fields(schema)] == ["_target_", "_partial_", *keyword]
    quiet = {f.name: f for f in dataclasses.fields(schema)}["quiet"]
    assert quiet.type is bool and quiet.default is True  # W&B's per-run lines off by default


def test_every_tracker_of_the_config_is_built_in_order(make_cfg, tmp_path):
    cfg = make_cfg(*QUICK, "tracker=[wandb,tensorboard]", "tracker.wandb.mode=disabled")
    spec = job_spec(cfg)

    class Bundle:  # what make_trackers reads of the data: the probe batch and the task
        x_train = y_train = __import__("torch").zeros(4, 3)
        task = "multiclass"

    trackers = make_trackers(spec, Bundle())
    names = [type(t).__name__ for t in trackers.trackers]
    trackers.finish()
    # the files first, always; then each _target_ node under tracker
    assert names == ["FilesTracker", "TensorBoardTracker", "WandbTracker"]


def test_a_tracker_target_is_checked_as_any_other(make_cfg, tmp_path):
    cfg = make_cfg(*QUICK, "tracker=tensorboard", "tracker.tensorboard._target_=os.system")
    with pytest.raises(ConfigError, match=r"^tracker.tensorboard._target_='os.system' is not"):
        run(cfg)
    # a job's dataset builder is allowed in dataset, not in tracker
    cfg = make_cfg(
        *QUICK,
        "tracker=tensorboard",
        "tracker.tensorboard._target_=initsweep.data.embedded.digits",
    )
    with pytest.raises(ConfigError, match=r"^tracker.tensorboard._target_='initsweep.data"):
        run(cfg)
    assert not (tmp_path / "tensorboard").exists()


@pytest.mark.parametrize(
    "override, line",
    [
        ("trainer.epochs=two", "trainer.epochs='two' is invalid: must be an integer"),
        ("trainer.amp=perhaps", "trainer.amp='perhaps' is invalid: must be true or false"),
        ("seeds=[0,a]", "seeds[1]='a' is invalid: must be an integer"),
        ("name=null", "name=None is invalid: must not be null"),
        ("bias.hidden=zeroes", "bias.hidden='zeroes' is invalid: use one of constant, default, zeros"),
        ("trainer.epoch=3", "trainer.epoch is invalid: trainer has no key 'epoch'; did you mean trainer.epochs?"),
        ("optimizer=adamw", "optimizer='adamw' is invalid: use one of adam, sgd"),
    ],
)  # fmt: skip
def test_a_value_the_schemas_refuse_is_one_line(make_cfg, override, line):
    with pytest.raises(HydraException) as err:
        make_cfg(override)
    assert str(compose_error(err.value)) == line


def test_a_key_added_where_no_schema_has_it_is_refused(make_cfg, tmp_path):
    for override, line in [
        ("+seed=1", "seed=1 is invalid: the config has no key 'seed'; did you mean seeds?"),
        (
            "+tracker.wandb.projet=x",
            "tracker.wandb.projet='x' is invalid: tracker.wandb has no key 'projet'; "
            "did you mean tracker.wandb.project?",
        ),
    ]:
        with pytest.raises(ConfigError) as err:
            run(make_cfg(*QUICK, "tracker=wandb", override))
        assert str(err.value) == line
    assert not (tmp_path / "summary.json").exists()


def test_the_root_schema_keeps_what_a_launcher_config_sets_globally():
    # hydra/launcher=slurm sets `resources` in the global package; the root schema merges after
    # it (schema/job heads train.yaml's defaults) and must not replace it
    with initialize_config_dir(config_dir=str(config.CONF_DIR)):
        cfg = compose("train", ["hydra/launcher=slurm"], return_hydra_config=True)
    assert cfg.resources.timeout_min == 120
    assert cfg.hydra.launcher.timeout_min == 120
