"""A tiny job end to end: the files it writes, the loss at init, learning, aggregation."""

from __future__ import annotations

import json
import math

import pytest

from initsweep.data.embedded import digits
from initsweep.files import read_jsonl
from initsweep.init.bias import entropy
from initsweep.job import run

ZERO_OUTPUT = "+init.rules=[{pattern: out.weight, scheme: zeros}]"


def _files(tmp_path):
    summary = json.loads((tmp_path / "summary.json").read_text())
    init = json.loads((tmp_path / "init.json").read_text())
    return summary, init, read_jsonl(tmp_path / "metrics.jsonl")


def test_job_writes_metrics_init_and_summary(make_cfg, tmp_path):
    objective = run(make_cfg())
    summary, init, metrics = _files(tmp_path)
    # one step-0 point per seed, then train/val points at increasing steps
    assert sorted(r["seed"] for r in metrics if r["step"] == 0) == [0, 1, 2]
    assert {"train/loss", "val/loss", "val/acc"} <= set().union(*metrics)
    assert max(r["step"] for r in metrics) > 0
    assert [s["seed"] for s in init["seeds"]] == [0, 1, 2]
    # the aggregate is the mean and sample std of the per-seed finals
    finals = [s["metrics"]["val/loss"] for s in summary["seeds"]]
    agg = summary["aggregate"]["val/loss"]
    assert agg["n"] == 3
    assert agg["mean"] == pytest.approx(sum(finals) / 3)
    mean = sum(finals) / 3
    assert agg["std"] == pytest.approx(math.sqrt(sum((f - mean) ** 2 for f in finals) / 2))
    assert objective == pytest.approx(agg["mean"])
    assert summary["objective"] == {
        "metric": "val/loss",
        "direction": "minimize",
        "value": objective,
    }


def test_prior_bias_with_zero_output_weights_starts_at_prior_entropy(make_cfg, tmp_path):
    run(make_cfg("bias=prior", ZERO_OUTPUT, "trainer.epochs=1"))
    _, init, metrics = _files(tmp_path)
    h = entropy(digits().class_prior)
    assert abs(h - math.log(10)) < 2e-3  # digits are nearly balanced
    for s in init["seeds"]:
        assert s["expected_loss"] == pytest.approx(h, abs=1e-9)
        assert s["measured_loss"] == pytest.approx(h, abs=1e-5)
    step0 = [r["train/loss"] for r in metrics if r["step"] == 0]
    assert step0 == pytest.approx([h] * 3, abs=1e-5)


def test_zero_bias_with_zero_output_weights_starts_at_ln_classes(make_cfg, tmp_path):
    run(make_cfg("bias=zeros", ZERO_OUTPUT, "trainer.epochs=1"))
    _, init, _ = _files(tmp_path)
    for s in init["seeds"]:
        assert s["measured_loss"] == pytest.approx(math.log(10), abs=1e-5)


def test_loss_goes_down(make_cfg, tmp_path):
    run(make_cfg("trainer.epochs=3"))
    _, _, metrics = _files(tmp_path)
    for seed in (0, 1, 2):
        val = [r["val/loss"] for r in metrics if r["seed"] == seed and "val/loss" in r]
        assert val[-1] < 0.5 * val[0]


def test_seeds_differ_and_repeat(make_cfg, tmp_path):
    a = run(make_cfg("seeds=[0,1]", output_dir=tmp_path / "a"))
    b = run(make_cfg("seeds=[0,1]", output_dir=tmp_path / "b"))
    assert a == b  # same config, same numbers on CPU
    init = json.loads((tmp_path / "a" / "init.json").read_text())["seeds"]
    assert init[0]["measured_loss"] != init[1]["measured_loss"]


def test_metrics_are_flushed_line_by_line(make_cfg, tmp_path):
    run(make_cfg("trainer.epochs=1"))
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert all(json.loads(line)["seed"] in (0, 1, 2) for line in lines)


def test_the_loss_at_init_is_measured_once_for_init_json_and_metrics(
    make_cfg, tmp_path, monkeypatch
):
    import initsweep.job.runner as runner
    import initsweep.train.loop as loop

    splits = []  # the size of every split evaluated, in order

    def counted(real):
        def eval_split(pop, x, y, *args):
            splits.append(len(x))
            return real(pop, x, y, *args)

        return eval_split

    monkeypatch.setattr(loop, "eval_split", counted(loop.eval_split))
    monkeypatch.setattr(runner, "eval_split", counted(runner.eval_split))
    run(make_cfg("trainer.epochs=1", "seeds=[0,1]"))
    summary, init, metrics = _files(tmp_path)
    data = summary["data"]
    # the training split once at step 0 (for init.json and metrics.jsonl alike), then the
    # validation split at step 0 and after the one epoch
    assert splits == [data["n_train"], data["n_val"], data["n_val"]]
    step0 = {r["seed"]: r["train/loss"] for r in metrics if r["step"] == 0 and "train/loss" in r}
    assert step0 == {s["seed"]: s["measured_loss"] for s in init["seeds"]}
