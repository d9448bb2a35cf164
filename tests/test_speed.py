"""Learning-speed metrics per seed, from records in the real ``metrics.jsonl`` shape."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from initsweep.errors import ConfigError
from initsweep.files import read_jsonl
from initsweep.job import run
from initsweep.report.compare.speed import (
    Target,
    default_first_k,
    diverged_steps,
    parse_target,
    speed_metrics,
    steps_per_epoch,
)


def job_records(curves: dict[int, list[float]], *, per_epoch: int, log_every: int, val=None):
    """``metrics.jsonl`` records as the loop writes them (see ``initsweep/train/loop.py``).

    ``curves[seed]`` is the train loss at steps 0, 1, 2, …: step 0 is the full eval; every
    ``log_every`` steps (and at each epoch end) the interval's loss is logged; val/loss and
    val/acc come at each epoch end from ``val(seed, epoch)`` (default: the train loss there).
    """
    records = []
    n_steps = len(next(iter(curves.values()))) - 1
    for seed, c in curves.items():
        records.append({"seed": seed, "step": 0, "epoch": 0, "train/loss": c[0], "val/loss": c[0]})
    last = 0
    for step in range(1, n_steps + 1):
        epoch = math.ceil(step / per_epoch)
        end = step % per_epoch == 0
        if step % log_every == 0 or end:
            for seed, c in curves.items():
                # the logged value is the interval's mean train loss
                records.append(
                    {
                        "seed": seed,
                        "step": step,
                        "epoch": epoch,
                        "train/loss": float(np.mean(c[last + 1 : step + 1])),
                    }
                )
            last = step
        if end:
            for seed, c in curves.items():
                v = val(seed, epoch) if val else c[step]
                acc = 1 - v / 3
                records.append(
                    {"seed": seed, "step": step, "epoch": epoch, "val/loss": v, "val/acc": acc}
                )
    return records


def test_parse_target_accepts_a_number_or_metric_and_value():
    # a bare number is a train/loss level; a metric name sets its direction
    assert parse_target(0.5) == Target("train/loss", 0.5)
    assert parse_target("0.25") == Target("train/loss", 0.25)
    assert parse_target("val/acc:0.9") == Target("val/acc", 0.9)
    assert parse_target("val/acc=0.9").reached(0.95) and not Target("val/acc", 0.9).reached(0.8)
    assert Target("val/loss", 0.3).reached(0.3) and not Target("val/loss", 0.3).reached(0.31)


@pytest.mark.parametrize("bad", ["fast", "val/acc:", ":0.5", "nan"])
def test_parse_target_rejects_bad_input_in_one_line(bad):
    with pytest.raises(ConfigError, match=r"^report\.target=.*0\.5") as e:
        parse_target(bad)
    assert "\n" not in str(e.value)


def test_metrics_match_hand_computed_values():
    # a linear ramp 2.0, 1.9, …, 0.0 over 20 steps: every metric has a closed form
    ramp = [2.0 - 0.1 * t for t in range(21)]
    records = job_records({0: ramp}, per_epoch=10, log_every=4)
    m = speed_metrics(records, target=Target("train/loss", 0.95), first_k=5)[0]
    assert steps_per_epoch(records) == 10
    assert m["train/loss@init"] == 2.0
    # the first logged step at or after 5 is 8: mean of steps 5..8 = 2 - 0.65
    assert m["train/loss@step5"] == pytest.approx(1.35)
    assert m["val/loss@epoch1"] == pytest.approx(1.0)
    # logged points: 0 (2.0), 4 (1.75), 8 (1.35), 10 (1.05), 12 (0.85): first ≤ 0.95 is step 12
    assert m["steps_to_target"] == 12 and m["epochs_to_target"] == pytest.approx(1.2)
    steps = [0, 4, 8, 10, 12, 16, 20]
    vals = [2.0, 1.75, 1.35, 1.05, 0.85, 0.55, 0.15]
    assert m["train/loss_auc"] == pytest.approx(np.trapezoid(vals, steps) / 20)
    assert m["val/loss_best"] == pytest.approx(0.0) and m["val/loss_final"] == pytest.approx(0.0)
    assert m["val/acc_best"] == pytest.approx(1.0)  # best accuracy is the highest one
    assert m["diverged"] == 0


def test_a_target_never_reached_is_nan_and_a_metric_target_uses_its_direction():
    ramp = [2.0 - 0.05 * t for t in range(21)]  # ends at 1.0
    records = job_records({0: ramp}, per_epoch=10, log_every=5)
    assert math.isnan(
        speed_metrics(records, target=Target("train/loss", 0.5))[0]["steps_to_target"]
    )
    # val/acc = 1 - val/loss / 3: 0.5 after epoch 1, 0.667 after epoch 2 (evaluated per epoch)
    m = speed_metrics(records, target=Target("val/acc", 0.6))[0]
    assert m["steps_to_target"] == 20 and m["epochs_to_target"] == 2


def test_diverged_seed_keeps_what_it_measured_before_diverging():
    good = [2.0 - 0.05 * t for t in range(21)]
    bad = good[:12] + [math.inf] * 9  # blows up in step 12
    records = job_records({0: good, 1: bad}, per_epoch=10, log_every=5)
    # the loop stops logging train/loss of a frozen copy after the divergence point
    records = [r for r in records if not (r["seed"] == 1 and r["step"] > 15 and "train/loss" in r)]
    assert diverged_steps(records) == {0: None, 1: 15}
    summary = {
        "seeds": [
            {"seed": 0, "diverged": False, "diverged_step": None, "metrics": {}},
            {"seed": 1, "diverged": True, "diverged_step": 15, "metrics": {}},
        ]
    }
    m = speed_metrics(records, target=Target("train/loss", 1.6), first_k=5, summary=summary)
    assert m[1]["diverged"] == 1 and m[0]["diverged"] == 0
    # before step 15 the diverged seed equals the good one; after it nothing is defined
    for key in ("train/loss@init", "train/loss@step5", "val/loss@epoch1", "steps_to_target"):
        assert m[1][key] == m[0][key]
    for key in ("train/loss_auc", "val/loss_final", "val/acc_best"):
        assert math.isnan(m[1][key]) and math.isfinite(m[0][key])


def test_default_first_k_is_a_tenth_of_the_run():
    records = job_records({0: [1.0] * 47}, per_epoch=23, log_every=5)
    assert default_first_k(records) == 5  # ceil(46 / 10)


def test_speed_metrics_of_a_real_job_agree_with_its_summary(make_cfg, tmp_path):
    run(make_cfg("trainer.epochs=1", "seeds=[0,1]"))
    summary = json.loads((tmp_path / "summary.json").read_text())
    records = read_jsonl(tmp_path / "metrics.jsonl")
    m = speed_metrics(records, target=Target("train/loss", 1.0), summary=summary)
    for s in summary["seeds"]:
        assert m[s["seed"]]["val/loss_final"] == pytest.approx(s["metrics"]["val/loss"])
        assert m[s["seed"]]["val/acc_final"] == pytest.approx(s["metrics"]["val/acc"])
        # after one epoch the val loss after epoch 1 is the final one
        assert m[s["seed"]]["val/loss@epoch1"] == m[s["seed"]]["val/loss_final"]
        # digits starts near ln 10 and learns within one epoch
        assert m[s["seed"]]["train/loss@init"] == pytest.approx(math.log(10), rel=0.15)
        assert 0 < m[s["seed"]]["steps_to_target"] <= steps_per_epoch(records)
