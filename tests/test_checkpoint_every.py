"""trainer.checkpoint_every: by epochs or by seconds (default 60 s), and always after the last
epoch, so a short study writes one checkpoint however many epochs it has."""

from __future__ import annotations

import time

import pytest

from initsweep.errors import ConfigError
from initsweep.job import run
from initsweep.train.checkpoint import Checkpoint, load_checkpoint
from initsweep.train.every import Every, Schedule, parse_every

QUICK = ["trainer.epochs=3", "dataset.limit=200", "seeds=[0,1]"]


@pytest.mark.parametrize(
    "value, every",
    [(1, Every(epochs=1)), ("3", Every(epochs=3)), ("60s", Every(seconds=60.0)),
     ("0.5s", Every(seconds=0.5)), (" 2 s ", Every(seconds=2.0))],
)  # fmt: skip
def test_checkpoint_every_reads_epochs_or_seconds(value, every):
    assert parse_every(value) == every


@pytest.mark.parametrize("value", ["0", "1.5", "often", "-1", "60m", ""])
def test_a_bad_checkpoint_every_is_one_line_naming_the_key(value):
    with pytest.raises(ConfigError) as e:
        parse_every(value)
    assert str(e.value).startswith(f"trainer.checkpoint_every={value!r} is invalid: a whole")
    assert "\n" not in str(e.value)


def test_by_epochs_the_same_epochs_and_the_last():
    schedule = Schedule(Every(epochs=2), epochs=5)
    assert [e for e in range(1, 6) if schedule.due(e)] == [2, 4, 5]


def test_by_time_after_the_first_epoch_that_ends_late_enough():
    schedule = Schedule(Every(seconds=0.05), epochs=10)
    assert not schedule.due(1)  # a fast first epoch: not yet
    time.sleep(0.06)
    assert schedule.due(2)
    schedule.saved()
    assert not schedule.due(3)  # the clock starts again at the save
    assert schedule.due(10)  # the last epoch, whatever the clock says


def _saves(monkeypatch) -> list[int]:
    saved, save = [], Checkpoint.save

    def recorded(self, epoch, *args):
        saved.append(epoch)
        save(self, epoch, *args)

    monkeypatch.setattr(Checkpoint, "save", recorded)
    return saved


def test_a_short_job_checkpoints_once_by_default(make_cfg, tmp_path, monkeypatch):
    saved = _saves(monkeypatch)
    run(make_cfg(*QUICK))
    assert saved == [3]  # 60 s never passed: only after the last epoch
    assert load_checkpoint(tmp_path)["epoch"] == 3


def test_checkpoint_every_epoch_when_asked(make_cfg, tmp_path, monkeypatch):
    saved = _saves(monkeypatch)
    run(make_cfg(*QUICK, "trainer.checkpoint_every=1"))
    assert saved == [1, 2, 3]


def test_a_bad_checkpoint_every_stops_the_job_before_any_work(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"^trainer.checkpoint_every='weekly' is invalid"):
        run(make_cfg(*QUICK, "trainer.checkpoint_every=weekly"))
    assert not (tmp_path / "metrics.jsonl").exists()


def test_a_rerun_may_change_when_it_checkpoints(make_cfg):
    first = run(make_cfg(*QUICK))
    # when the state is saved is not what it is: the finished job's objective comes back
    assert run(make_cfg(*QUICK, "trainer.checkpoint_every=1")) == first
