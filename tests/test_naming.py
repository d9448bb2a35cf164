"""Run names, groups and studies (``initsweep.track.naming``), and the keys a sweep varies."""

from __future__ import annotations

from omegaconf import OmegaConf

from initsweep.job.spec import NOT_ARM, sweep_keys
from initsweep.track.naming import MAX_GROUP, MAX_JOB_TYPE, run_layout

SWEEP = "/r/outputs/multirun/2026-11-22/12-00-00-123456"


def test_names_are_the_swept_overrides_short_and_groups_the_arm_in_its_sweep():
    overrides = [
        "init=kaiming_normal",
        "init.gain=1.5",
        "seeds=[0,1]",
        "tracker=wandb",
        "trainer.progress=False",
        "model.hidden=[16]",
        "hydra/launcher=joblib",
        "tags=[a]",
    ]
    config = {"init": {"name": "kaiming_normal", "gain": 1.5}}
    layout = run_layout("demo", overrides, ("init", "init.gain"), NOT_ARM, SWEEP, config)
    assert layout.name(3) == "init=kaiming_normal,gain=1.5,s3"
    # the arm: every override that changes the numbers, the swept ones first
    assert layout.arm == "init=kaiming_normal,init.gain=1.5,model.hidden=[16]"
    assert layout.group == f"{layout.arm} @ 2026-11-22/12-00-00-123456"
    assert layout.study == "demo:2026-11-22/12-00-00-123456"
    # W&B config keys: the config's own typed values, a group choice as its option's name
    assert layout.varying == {"init": "kaiming_normal", "init.gain": 1.5}


def test_keys_sharing_a_last_part_stay_whole_and_odd_characters_leave_dir_names():
    overrides = ["init.gain=2", "bias.gain=0.5", "dataset.path=/data/x.npz"]
    layout = run_layout("d", overrides, ("init.gain", "bias.gain", "dataset.path"), (), SWEEP)
    assert layout.name(0) == "init.gain=2,bias.gain=0.5,path=/data/x.npz,s0"
    assert layout.dir_name(0) == "init.gain=2,bias.gain=0.5,path=_data_x.npz,s0"


def test_without_known_sweep_keys_every_override_of_the_arm_names_the_runs():
    layout = run_layout("d", ["init=zeros", "seeds=[0]", "bias=prior"], None, NOT_ARM, SWEEP)
    assert layout.name(0) == "init=zeros,bias=prior,s0"
    single = run_layout("demo", [], (), NOT_ARM, "/r/outputs/runs/2026-11-22/12-00-00")
    assert single.name(0) == "demo,s0"  # a single run without overrides: the study's name
    assert single.arm == "defaults" and single.group == "defaults @ 2026-11-22/12-00-00"


def test_long_overrides_fit_w_and_b_limits_and_stay_distinct():
    a = run_layout("x" * 80, [f"init.rules={'r' * 200}a"], None, (), SWEEP)
    b = run_layout("x" * 80, [f"init.rules={'r' * 200}b"], None, (), SWEEP)
    assert len(a.group) == len(b.group) == MAX_GROUP and a.group != b.group
    assert len(a.study) == MAX_JOB_TYPE
    assert a.group.endswith(" @ 2026-11-22/12-00-00-123456")  # the sweep stays whole
    assert a.name(0) != b.name(0)
    assert run_layout("n", [], (), (), SWEEP, study="n-gain").study == "n-gain"


def test_an_optuna_trials_long_float_is_short_in_the_name_and_whole_in_the_group():
    layout = run_layout("n", ["init.gain=1.252065381499947"], ("init.gain",), (), SWEEP)
    assert layout.name(0) == "gain=1.252,s0"
    assert layout.arm == "init.gain=1.252065381499947"


def test_sweep_keys_come_from_the_command_line_and_the_sweeper_params(tmp_path):
    OmegaConf.save(
        {
            "hydra": {
                "sweeper": {"params": {"model.activation": "tanh,relu"}},
                "overrides": {
                    "task": [
                        "init=zeros,ones",
                        "seeds=[0,1]",  # a list, not a sweep
                        "+x=range(1,3)",
                        "init.gain=tag(log, interval(0.1, 10))",
                        "trainer.epochs=1",
                    ]
                },
            }
        },
        tmp_path / "multirun.yaml",
    )
    assert sweep_keys(tmp_path) == ("model.activation", "init", "x", "init.gain")
    assert sweep_keys(tmp_path / "nowhere") is None
