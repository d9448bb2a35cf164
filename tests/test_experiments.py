"""Study presets: each composes with its sweep, each embedded twin runs end to end offline."""

from __future__ import annotations

import json
import math

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from initsweep.config import CONF_DIR
from initsweep.data import embedded
from initsweep.init.bias import binary_entropy, entropy
from initsweep.job import run
from tests.conftest import run_cli
from tests.tiny_vision import trust_cifar, write_cifar, write_mnist

STUDIES = [
    "bias_prior_imbalanced",
    "bias_prior_regression",
    "frog_vs_notfrog",
    "fashion_mnist_schemes",
    "deep_linear_explode",
    "orthogonal_gain",
    "lstm_forget_bias",
    "residual_without_norm",
    "deep_post_ln",
]
# published checks that run on embedded data already: no twin (the coordinate check is a probe)
CHECKS = {"mup_coord_check": "initsweep-probe", "mup_transfer": "initsweep-train"}
PRESETS = STUDIES + [f"{s}_twin" for s in STUDIES] + list(CHECKS)


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR)):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def _sweep(name: str) -> dict[str, list[str]]:
    params = _compose(f"experiment={name}").hydra.sweeper.params
    return {k: str(v).split(",") for k, v in params.items()}


def test_every_study_has_an_embedded_twin_and_nothing_else_is_there():
    on_disk = {p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")}
    assert on_disk == set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_is_global_names_its_study_and_shows_its_command(name):
    text = (CONF_DIR / "experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_\n")
    assert f"{CHECKS.get(name, 'initsweep-train')} -m experiment={name}" in text
    cfg = _compose(f"experiment={name}")
    assert cfg.name == name
    assert cfg.hydra.sweeper.params, "a preset sweeps: -m experiment=<name> runs the study"


@pytest.mark.parametrize("name", PRESETS)
def test_every_swept_value_composes(name):
    # a group option must exist as yaml, a key must accept the value (types are checked)
    for key, values in _sweep(name).items():
        for value in values:
            cfg = _compose(f"experiment={name}", f"{key}={value}")
            name_ = key.lstrip("+")  # +arm=...: a group the defaults list does not name
            if "." in name_:
                assert str(OmegaConf.select(cfg, name_)).lower() == value.lower()
            else:
                assert (CONF_DIR / name_ / f"{value}.yaml").exists()
                assert cfg[name_].name == value


@pytest.mark.slow
def test_cfg_job_prints_the_composed_study():
    res = run_cli("experiment=frog_vs_notfrog", "--cfg", "job")
    assert res.returncode == 0, res.stderr
    assert "name: frog_vs_notfrog" in res.stdout
    assert "one_vs_rest: frog" in res.stdout and "_target_: initsweep.models.efficientnet_b1" in (
        res.stdout
    )


# --- embedded twins: one job each (the preset's default arm), end to end ---------------------


def _job(make_cfg, tmp_path, *overrides: str) -> tuple[dict, dict]:
    run(make_cfg(*overrides, "trainer.log_every=1"))
    summary = json.loads((tmp_path / "summary.json").read_text())
    init = json.loads((tmp_path / "init.json").read_text())
    return summary, init


@pytest.mark.parametrize("name", STUDIES)
def test_embedded_twin_runs_end_to_end(make_cfg, tmp_path, name):
    summary, init = _job(make_cfg, tmp_path, f"experiment={name}_twin")
    assert summary["name"] == f"{name}_twin"
    assert [s["seed"] for s in summary["seeds"]] == [0, 1]
    assert math.isfinite(summary["objective"]["value"])
    assert len(init["seeds"]) == 2


@pytest.mark.parametrize("bias", ["zeros", "prior"])
def test_imbalanced_twin_starts_at_the_loss_its_bias_predicts(make_cfg, tmp_path, bias):
    _, init = _job(make_cfg, tmp_path, "experiment=bias_prior_imbalanced_twin", f"bias={bias}")
    prior = embedded.digits(flatten=False, imbalance={"ratio": 10}).class_prior
    expected = entropy(prior) if bias == "prior" else math.log(10)
    for seed in init["seeds"]:
        assert seed["expected_loss"] == pytest.approx(expected, abs=1e-6)
        # PyTorch's default output weights are small: the measured loss is close to theory
        assert seed["measured_loss"] == pytest.approx(expected, abs=0.05)
    assert entropy(prior) < math.log(10) - 0.2


def test_frog_twin_prior_bias_starts_at_the_binary_entropy(make_cfg, tmp_path):
    _, init = _job(make_cfg, tmp_path, "experiment=frog_vs_notfrog_twin", "bias=prior")
    p = embedded.digits(one_vs_rest=6).class_prior.item()
    for seed in init["seeds"]:
        assert seed["expected_loss"] == pytest.approx(binary_entropy(p), abs=1e-6)


@pytest.mark.parametrize("loss, bias", [("mse", "mean"), ("mae", "median")])
def test_regression_twin_bias_at_the_loss_optimum(make_cfg, tmp_path, loss, bias):
    _, init = _job(
        make_cfg,
        tmp_path,
        "experiment=bias_prior_regression_twin",
        f"trainer.loss={loss}",
        f"bias={bias}",
    )
    y = embedded.diabetes().y_train.double()
    # MSE at the mean is the population variance; MAE at the median the mean absolute deviation
    expected = y.var(correction=0) if loss == "mse" else (y - y.median()).abs().mean()
    for seed in init["seeds"]:
        assert seed["expected_loss"] == pytest.approx(float(expected), rel=1e-5)


def test_deep_linear_twin_scales_the_hidden_identities_and_not_the_output(make_cfg, tmp_path):
    _, init = _job(make_cfg, tmp_path, "experiment=deep_linear_explode_twin", "init.scale=1.5")
    assignment = {a["param"]: a for a in init["seeds"][0]["assignment"]}
    hidden = [f"body.{2 * i + 1}.weight" for i in range(10)]  # Flatten, then Linear/Identity pairs
    assert all(assignment[p]["scheme"] == "identity" for p in hidden)
    assert all(assignment[p]["scale"] == 1.5 for p in hidden)
    # the output layer is the same xavier draw in every arm: the arms differ only in the stack
    assert assignment["out.weight"]["scheme"] == "xavier_normal"
    assert assignment["out.weight"]["scale"] == 1.0


@pytest.mark.slow
def test_twin_multirun_runs_the_whole_sweep(tmp_path):
    res = run_cli(
        "-m",
        "experiment=frog_vs_notfrog_twin",
        "trainer.progress=false",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert res.returncode == 0, res.stderr
    summaries = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/summary.json"))]
    assert sorted(s["config"]["bias"]["name"] for s in summaries) == ["prior", "zeros"]
    assert all(s["name"] == "frog_vs_notfrog_twin" for s in summaries)


# --- the full studies, end to end on tiny files in torchvision's formats ----------------------

FULL = {  # study -> the overrides that make it tiny (data from tiny files or fewer samples)
    # ratio 100 on 10 images/class empties classes, and a 10% val split of them would be empty
    "bias_prior_imbalanced": ["bias=zeros", "dataset.imbalance.val=false"],
    # val: half of 40 training images (a 10% split would hold no frog: no AUC)
    "frog_vs_notfrog": ["model.pretrained=false", "dataset.limit=40", "dataset.val_fraction=0.5"],
    "fashion_mnist_schemes": [],
    "deep_linear_explode": ["init.scale=1.0"],
    "orthogonal_gain": [],
    "bias_prior_regression": ["dataset.samples=300"],
    "lstm_forget_bias": ["dataset.samples=100", "dataset.length=10", "model.hidden_size=8"],
    "residual_without_norm": ["model.depth=4"],
    "deep_post_ln": ["model.depth=2", "dataset.limit=40"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", STUDIES)
def test_full_study_runs_offline_on_tiny_files(make_cfg, tmp_path, monkeypatch, name):
    data = tmp_path / "data"
    write_cifar(data)
    trust_cifar(monkeypatch, data)
    write_mnist(data, "MNIST")
    write_mnist(data, "FashionMNIST")
    out = tmp_path / "out"
    cfg = make_cfg(
        f"experiment={name}",
        *FULL[name],
        f"paths.data_dir={data}",
        "trainer.epochs=1",
        "trainer.batch_size=8",  # the tiny files hold fewer samples than the study's batch
        "seeds=[0,1]",
        output_dir=out,
    )
    objective = run(cfg)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["name"] == name and len(summary["seeds"]) == 2
    # a finite objective, or copies that diverged and say so
    assert math.isfinite(objective) or summary["n_diverged"] > 0
