"""The held-out test split: how it is drawn, that the job looks at it once, never to select."""

from __future__ import annotations

import json

import pytest
import torch

from initsweep.data import embedded, vision
from initsweep.errors import ConfigError
from initsweep.files import read_jsonl
from initsweep.job import run
from initsweep.job.build import build_data, build_models, build_population, loop_config
from initsweep.job.spec import job_spec
from initsweep.train.loop import CopyState, fit
from tests.tiny_vision import write_mnist


def _rows(x: torch.Tensor) -> set[tuple]:
    return {tuple(r) for r in x.tolist()}


def test_test_fraction_holds_out_a_seeded_share_before_the_val_split():
    b = embedded.wine(test_fraction=0.2)
    assert len(b.x_test) == round(0.2 * 178)
    assert len(b.x_val) == round(0.2 * (178 - len(b.x_test)))
    assert len(b.x_train) + len(b.x_val) + len(b.x_test) == 178
    # wine has no duplicate rows: the three splits are disjoint
    assert not _rows(b.x_test) & (_rows(b.x_train) | _rows(b.x_val))
    again, other = embedded.wine(test_fraction=0.2), embedded.wine(test_fraction=0.2, split_seed=1)
    assert torch.equal(b.x_test, again.x_test) and not torch.equal(b.x_test, other.x_test)
    # standardised with the training split's numbers, like val
    assert not torch.allclose(b.x_test.mean(0), torch.zeros(13), atol=1e-3)
    assert embedded.wine().x_test is None  # off by default for the embedded sets


def test_the_test_split_gets_the_same_task_transforms_as_val():
    b = embedded.digits(test_fraction=0.25, one_vs_rest=3)
    assert b.task == "binary" and set(b.y_test.unique().tolist()) <= {0.0, 1.0}
    assert b.summary()["test_class_counts"][1] == int(b.y_test.sum())
    lt = embedded.digits(test_fraction=0.25, imbalance={"ratio": 10})
    counts = torch.bincount(lt.y_test, minlength=10)
    assert counts[0] > 3 * counts[9]  # long-tailed like train and val


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, "official"])
def test_a_bad_test_fraction_fails_in_one_line(bad):
    with pytest.raises(ConfigError, match=r"^dataset\.test_fraction=") as e:
        embedded.iris(test_fraction=bad)
    assert "\n" not in str(e.value)


def test_torchvision_official_test_set_becomes_test_and_val_comes_from_train(tmp_path):
    raw = write_mnist(tmp_path, "MNIST")  # 40 train, 20 test images
    b = vision.mnist(
        root=str(tmp_path), download=False, test_fraction="official", val_fraction=0.1
    )
    assert torch.equal(b.y_test, torch.tensor(raw["t10k"][1]).long()) and len(b.x_test) == 20
    assert (len(b.x_train), len(b.x_val)) == (36, 4)  # val: a seeded 10% of the training set
    old = vision.mnist(root=str(tmp_path), download=False)  # no test split: val is the test set
    assert old.x_test is None and torch.equal(old.y_val, b.y_test)
    with pytest.raises(ConfigError, match="dataset.val_fraction=None is invalid") as e:
        vision.mnist(root=str(tmp_path), download=False, test_fraction="official")
    assert "\n" not in str(e.value)


def test_a_job_logs_test_once_at_the_end_and_never_selects_on_it(make_cfg, tmp_path):
    value = run(make_cfg("dataset.test_fraction=0.2", "seeds=[0,1]"))
    records = read_jsonl(tmp_path / "metrics.jsonl")
    tests = [r for r in records if any(k.startswith("test/") for k in r)]
    last = max(r["step"] for r in records)
    assert sorted(r["seed"] for r in tests) == [0, 1]  # one record per seed
    assert all(r["step"] == last and r["epoch"] == 2 and "val/loss" not in r for r in tests)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {"test/loss", "test/acc"} <= set(summary["aggregate"])
    assert summary["data"]["n_test"] == round(0.2 * 1797)
    assert value == summary["objective"]["value"] == summary["aggregate"]["val/loss"]["mean"]
    with pytest.raises(ConfigError, match="objective='test/acc' is invalid: .* use val/acc"):
        job_spec(make_cfg("objective=test/acc"))


class StopAfter:
    """A hook that stops the run after ``epoch``, as the pruner does."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, epoch, step, pop, copies) -> None:
        if epoch == self.epoch:
            raise RuntimeError(f"stopped after epoch {epoch}")


class Collect:
    """The tracker methods :func:`fit` calls, keeping the records."""

    def __init__(self) -> None:
        self.records: list[dict] = []

    def log_metrics(self, records: list[dict]) -> None:
        self.records += records

    def log_model(self, step, epoch, pop) -> None:
        pass


def test_a_stopped_job_logs_test_at_the_epoch_it_stopped_after(make_cfg):
    spec = job_spec(make_cfg("dataset.test_fraction=0.2", "seeds=[0,1]", "trainer.epochs=3"))
    bundle, loss = build_data(spec)
    models = build_models(spec, bundle, loss)[0]  # (models, assignments, ...)
    pop = build_population(spec, models, loss, torch.device("cpu"))
    copies, tracker = [CopyState(s) for s in spec.seeds], Collect()
    with pytest.raises(RuntimeError, match="after epoch 1"):
        fit(pop, bundle, loop_config(spec, loss), tracker, copies, [StopAfter(1)])
    tests = [r for r in tracker.records if "test/loss" in r]
    assert [(r["seed"], r["epoch"]) for r in tests] == [(0, 1), (1, 1)]
    assert all("test/acc" in c.final for c in copies)
