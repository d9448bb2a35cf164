"""Datasets and transforms: every builder, exact class counts and priors, torchvision offline."""

from __future__ import annotations

import math
import socket

import numpy as np
import pytest
import torch

from initsweep.config import CONF_DIR
from initsweep.data import TASKS, embedded, vision
from initsweep.data.transforms import fraction_counts, long_tail_counts
from initsweep.errors import ConfigError
from initsweep.init.bias import binary_entropy, entropy
from initsweep.job.build import build
from tests.tiny_vision import trust_cifar, write_cifar, write_mnist

# builder, task, input shape, samples in all, output units
EMBEDDED = [
    (embedded.digits, "multiclass", (64,), 1797, 10),
    (embedded.breast_cancer, "binary", (30,), 569, 1),
    (embedded.wine, "multiclass", (13,), 178, 3),
    (embedded.iris, "multiclass", (4,), 150, 3),
    (embedded.diabetes, "regression", (10,), 442, 1),
    (embedded.synthetic, "multiclass", (20,), 2000, 10),
    (embedded.adding, "regression", (50, 2), 2000, 1),
]


@pytest.mark.parametrize("build, task, shape, n, outputs", EMBEDDED)
def test_embedded_dataset_builds(build, task, shape, n, outputs):
    b = build()
    assert (b.task, b.input_shape, b.num_outputs) == (task, shape, outputs)
    assert len(b.x_train) + len(b.x_val) == n
    assert len(b.x_val) == round(0.2 * n)
    assert b.x_train.dtype == torch.float32 and torch.isfinite(b.x_train).all()
    # targets: class ids for multiclass, 0/1 floats for binary, floats for regression
    assert b.y_train.shape == (len(b.x_train),)
    if task == "multiclass":
        assert b.y_train.dtype == torch.long and b.y_train.max() < outputs
    else:
        assert b.y_train.dtype == torch.float32
    if task == "binary":
        assert set(b.y_train.unique().tolist()) == {0.0, 1.0}


def test_split_is_seeded_and_disjoint():
    a, b, c = embedded.digits(), embedded.digits(), embedded.digits(split_seed=1)
    assert torch.equal(a.x_val, b.x_val)
    assert not torch.equal(a.x_val, c.x_val)
    # no validation image is also a training image (digits has a few exact duplicates: compare rows)
    train_rows = {tuple(r) for r in a.x_train.tolist()}
    overlap = sum(tuple(r) in train_rows for r in a.x_val.tolist())
    assert overlap < 0.05 * len(a.x_val)


def test_tabular_features_are_standardised_with_training_statistics():
    b = embedded.wine()
    assert torch.allclose(b.x_train.mean(0), torch.zeros(13), atol=1e-5)
    assert torch.allclose(b.x_train.std(0), torch.ones(13), atol=1e-5)
    assert not torch.allclose(b.x_val.mean(0), torch.zeros(13), atol=1e-3)  # val is not re-fit


def test_long_tail_counts_follow_cao_et_al_and_give_the_reference_entropy():
    # n_i = floor(5000 * 100^(-i/9)): CIFAR-10-LT with ratio 100
    counts = long_tail_counts([5000] * 10, 100)
    assert counts == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    # the loss at init of the prior bias on it (the closed form: 1.6437)
    assert entropy(torch.tensor(counts) / sum(counts)) == pytest.approx(1.6437, abs=1e-4)
    # n_max is the smallest class count, so every class can supply its share
    assert long_tail_counts([7, 9, 8], 1) == [7, 7, 7]


def test_imbalance_ratio_gives_the_requested_counts_and_prior():
    plain = embedded.digits(flatten=False)
    b = embedded.digits(flatten=False, imbalance={"ratio": 10})
    train_counts = torch.bincount(plain.y_train, minlength=10).tolist()
    expected = long_tail_counts(train_counts, 10)
    assert torch.bincount(b.y_train, minlength=10).tolist() == expected
    # the prior the bias rule sees is the training split's, after the transform
    assert torch.allclose(
        b.class_prior, torch.tensor(expected, dtype=torch.float64) / sum(expected)
    )
    # val gets the same long tail from its own counts
    val_counts = torch.bincount(plain.y_val, minlength=10).tolist()
    assert torch.bincount(b.y_val, minlength=10).tolist() == long_tail_counts(val_counts, 10)
    # ... unless val: false keeps it as it was
    kept = embedded.digits(imbalance={"ratio": 10, "val": False})
    assert torch.equal(kept.y_val, plain.y_val)


def test_imbalance_fractions_keep_that_share_of_each_class():
    plain = embedded.iris()
    b = embedded.iris(imbalance={"fractions": [1.0, 0.5, 0.1]})
    counts = torch.bincount(plain.y_train, minlength=3).tolist()
    assert torch.bincount(b.y_train, minlength=3).tolist() == fraction_counts(
        counts, [1.0, 0.5, 0.1]
    )
    assert fraction_counts([40, 40, 40], [1.0, 0.5, 0.1]) == [40, 20, 4]


def test_binary_dataset_can_be_imbalanced_to_a_positive_rate():
    b = embedded.breast_cancer(imbalance={"fractions": [1.0, 0.2]})
    pos, neg = int(b.y_train.sum()), int((1 - b.y_train).sum())
    plain = embedded.breast_cancer()
    assert neg == int((1 - plain.y_train).sum())
    assert pos == round(0.2 * int(plain.y_train.sum()))
    assert b.class_prior.item() == pytest.approx(pos / (pos + neg))


def test_one_vs_rest_makes_a_binary_task_with_the_positive_rate_as_prior():
    plain = embedded.digits()
    b = embedded.digits(one_vs_rest=6)
    assert b.task == "binary" and b.num_outputs == 1 and b.num_classes is None
    assert torch.equal(b.y_train, (plain.y_train == 6).float())
    assert b.class_prior.item() == pytest.approx(float((plain.y_train == 6).double().mean()))
    assert b.class_names == ["not 6", "6"]
    # by name as well as by index
    by_name = embedded.iris(one_vs_rest="virginica")
    assert torch.equal(by_name.y_train, embedded.iris(one_vs_rest=2).y_train)


def test_imbalance_then_one_vs_rest_sets_the_rate():
    # subsample class 0 first, then make it the positive class: the transforms compose
    b = embedded.iris(imbalance={"fractions": [1 / 9 * 2, 1.0, 1.0]}, one_vs_rest=0)
    n0 = round(2 / 9 * int((embedded.iris().y_train == 0).sum()))
    assert int(b.y_train.sum()) == n0
    h = binary_entropy(b.class_prior.item())
    assert 0 < h < math.log(2)


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"imbalance": {"fractions": [1.0, 0.5]}}, "dataset.imbalance.fractions"),
        ({"imbalance": {"fractions": [1.0, 2.0, 0.5]}}, "dataset.imbalance.fractions"),
        ({"imbalance": {"ratio": 0.5}}, "dataset.imbalance.ratio"),
        ({"imbalance": {"ratio": 10, "fractions": [1, 1, 1]}}, "dataset.imbalance"),
        ({"one_vs_rest": "tulip"}, "dataset.one_vs_rest"),
        ({"one_vs_rest": 3}, "dataset.one_vs_rest"),
        ({"limit": 1}, "dataset.limit"),
        ({"val_fraction": 1.0}, "dataset.val_fraction"),
    ],
)
def test_bad_transform_fails_in_one_line_naming_the_key(kwargs, key):
    with pytest.raises(ConfigError) as e:
        embedded.iris(**kwargs)
    assert str(e.value).startswith(key) and "\n" not in str(e.value)


def test_regression_datasets_refuse_class_transforms():
    with pytest.raises(ConfigError, match="dataset.imbalance.*regression"):
        embedded.synthetic(task="regression", imbalance={"ratio": 10})


def test_limit_caps_the_pool_before_the_split():
    b = embedded.digits(limit=100)
    assert len(b.x_train) + len(b.x_val) == 100


def test_target_stats_are_the_training_split_statistics():
    b = embedded.diabetes()
    y = b.y_train.double().numpy()
    s = b.target_stats
    assert s["mean"] == pytest.approx(y.mean())
    assert s["var"] == pytest.approx(y.var())  # population variance: the MSE of the mean
    assert s["std"] == pytest.approx(y.std())
    assert s["median"] == np.median(y) == 139.5  # numpy's: the midpoint of 139 and 140
    assert embedded.digits().target_stats is None


def test_synthetic_tasks_and_teachers():
    # no noise and a linear teacher: the regression target is exactly linear in the inputs
    b = embedded.synthetic(task="regression", noise=0.0, features=5, samples=200)
    coef = torch.linalg.lstsq(b.x_train, b.y_train.unsqueeze(1)).solution
    assert torch.allclose(b.x_train @ coef, b.y_train.unsqueeze(1), atol=1e-4)
    binary = embedded.synthetic(task="binary", teacher="mlp")
    assert binary.task == "binary" and 0.2 < binary.class_prior.item() < 0.8
    # lognormal noise gives a right-skewed target: mean above median
    skewed = embedded.synthetic(task="regression", noise=1.0, noise_dist="lognormal", samples=5000)
    assert skewed.target_stats["mean"] > skewed.target_stats["median"] + 0.3
    assert embedded.synthetic(classes=4, samples=400).num_outputs == 4
    with pytest.raises(ConfigError, match="dataset.teacher"):
        embedded.synthetic(teacher="cnn")


def test_adding_problem_targets_are_the_sum_of_the_two_marked_values():
    b = embedded.adding(length=12, samples=500)
    x = torch.cat([b.x_train, b.x_val])
    y = torch.cat([b.y_train, b.y_val])
    values, markers = x[..., 0], x[..., 1]
    assert torch.equal(markers.sum(1), torch.full((500,), 2.0))
    # one marker in each half
    assert torch.equal(markers[:, :6].sum(1), torch.ones(500))
    assert torch.allclose((values * markers).sum(1), y)


def test_adding_problem_baseline_mse_is_one_sixth():
    b = embedded.adding(length=10, samples=20000)
    # predicting the constant 1 costs Var(U1 + U2) = 2/12
    assert ((b.y_train - 1.0) ** 2).mean().item() == pytest.approx(1 / 6, abs=0.005)


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF_DIR / "dataset").glob("*.yaml")))
def test_every_dataset_yaml_builds_a_bundle(make_cfg, tmp_path, monkeypatch, name):
    # every conf/dataset/<name>.yaml, offline: torchvision's sets read tiny files in their own
    # format, a file dataset a tiny file (a new yaml needs no edit here)
    for folder in ("MNIST", "FashionMNIST"):
        write_mnist(tmp_path, folder)
    for classes in (10, 100):
        write_cifar(tmp_path, classes=classes, per_class=2 if classes == 100 else 10)
        trust_cifar(monkeypatch, tmp_path, classes)
    overrides = [f"dataset={name}", f"paths.data_dir={tmp_path}"]
    cfg = make_cfg(*overrides)
    if "path" in cfg.dataset.keys():  # your own file: give it one
        x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
        np.savez(tmp_path / "own.npz", x=x, y=np.arange(50) % 3)
        cfg = make_cfg(*overrides, f"dataset.path={tmp_path / 'own.npz'}")
    if "train" in cfg.dataset.keys():  # your own Dataset class: torchvision's FakeData as one
        fake = "dataset.train._target_=torchvision.datasets.FakeData"
        sizes = ["+dataset.train.size=20", "+dataset.train.image_size=[1,4,4]"]
        tensor = "+dataset.train.transform._target_=torchvision.transforms.ToTensor"
        cfg = make_cfg(*overrides, fake, *sizes, tensor)
    b = build(cfg.dataset)
    assert b.task in TASKS and len(b.x_train) > 0 and len(b.x_val) > 0
    # one target per sample; a token task one per position, [N, T]
    assert len(b.y_train) == len(b.x_train) and torch.isfinite(b.x_train).all()
    assert b.y_train.dim() == (2 if b.task == "tokens" else 1)
    assert b.num_outputs >= 1


# --- torchvision, from tiny files in the real on-disk formats ------------------------------


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_style_datasets_load_through_torchvision(tmp_path, name, folder):
    raw = write_mnist(tmp_path, folder)
    b = vision.load(name, root=str(tmp_path), download=False, normalize=False)
    assert b.input_shape == (1, 28, 28) and b.num_classes == 10
    # val is the official test set; pixels are uint8 / 255
    assert len(b.x_train) == 40 and len(b.x_val) == 20
    assert torch.equal(b.x_train[:, 0], torch.tensor(raw["train"][0]).float() / 255)
    assert torch.equal(b.y_val, torch.tensor(raw["t10k"][1]).long())
    spec = vision.SPECS[name]
    normed = vision.load(name, root=str(tmp_path), download=False)
    assert torch.allclose(normed.x_train, (b.x_train - spec.mean[0]) / spec.std[0])


@pytest.mark.parametrize("classes", [10, 100])
def test_cifar_loads_through_torchvision(tmp_path, monkeypatch, classes):
    images, labels = write_cifar(tmp_path, classes=classes, per_class=2 if classes == 100 else 10)
    trust_cifar(monkeypatch, tmp_path, classes)
    name = "cifar10" if classes == 10 else "cifar100"
    b = vision.load(name, root=str(tmp_path), download=True)
    assert b.input_shape == (3, 32, 32) and b.num_classes == classes
    spec = vision.SPECS[name]
    # HWC uint8 on disk -> CHW float, normalised per channel
    expect = torch.tensor(images).permute(0, 3, 1, 2).float() / 255
    expect = (expect - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(
        1, 3, 1, 1
    )
    assert torch.allclose(b.x_train, expect, atol=1e-6)
    assert torch.equal(b.y_train, torch.tensor(labels))


def test_cifar10_frog_vs_rest_and_long_tail(tmp_path, monkeypatch):
    write_cifar(tmp_path)
    trust_cifar(monkeypatch, tmp_path)
    frog = vision.cifar10(root=str(tmp_path), one_vs_rest="frog")
    assert frog.task == "binary" and frog.class_names == ["not frog", "frog"]
    assert frog.class_prior.item() == pytest.approx(0.1)
    lt = vision.cifar10(root=str(tmp_path), imbalance={"ratio": 10}, val_fraction=0.5)
    counts = torch.bincount(lt.y_train, minlength=10).tolist()
    assert counts == long_tail_counts(
        torch.bincount(vision.cifar10(root=str(tmp_path), val_fraction=0.5).y_train).tolist(), 10
    )


def test_missing_files_offline_say_where_and_how(tmp_path):
    with pytest.raises(ConfigError) as e:
        vision.cifar10(root=str(tmp_path / "data"), download=False)
    msg = str(e.value)
    assert "\n" not in msg
    assert str(tmp_path / "data" / "cifar-10-batches-py") in msg
    assert "dataset.download=true" in msg and "paths.data_dir" in msg


def _offline() -> bool:
    try:
        socket.getaddrinfo("ossci-datasets.s3.amazonaws.com", 443)
    except OSError:
        return True
    return False


@pytest.mark.skipif(not _offline(), reason="needs a machine without network")
def test_download_without_network_fails_in_one_line(tmp_path):
    with pytest.raises(ConfigError) as e:
        vision.mnist(root=str(tmp_path), download=True)
    msg = str(e.value)
    assert "\n" not in msg and "download failed" in msg
    assert str(tmp_path / "MNIST" / "raw") in msg


def test_bundle_moves_to_a_device_in_one_piece():
    b = embedded.digits(one_vs_rest=3).to("cpu")
    assert b.class_names == ["not 3", "3"] and b.task == "binary"
    assert np.isclose(b.class_prior.item(), float(b.y_train.mean()))
