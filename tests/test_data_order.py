"""trainer.data_order: one order shared by every seed (default), or each seed its own shuffle.

Under ``per_seed`` a copy's order depends on its own seed only, so copy i of a job equals the
job of that seed alone, stacked or sequential.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import TensorDataset

from initsweep.data import DataBundle
from initsweep.data.stream import Samples
from initsweep.files import read_jsonl
from initsweep.job import run
from initsweep.train.order import epoch_batches, epoch_orders

QUICK = ["trainer.epochs=2", "dataset.limit=300", "trainer.batch_size=32"]


def _seed_records(path, seed: int) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k != "seed"}
        for r in read_jsonl(path / "metrics.jsonl")
        if r["seed"] == seed
    ]


def _close(a: list[dict], b: list[dict], rel: float) -> None:
    assert [sorted(r) for r in a] == [sorted(r) for r in b]
    for ra, rb in zip(a, b):
        for key, value in ra.items():
            assert value == pytest.approx(rb[key], rel=rel, abs=1e-7), key


def test_orders_per_seed_depend_on_the_seed_only():
    both = epoch_orders(50, "per_seed", 3, [7, 8], epoch=2)
    alone = epoch_orders(50, "per_seed", 3, [8], epoch=2)
    assert torch.equal(both[1], alone[0]) and not torch.equal(both[0], both[1])
    assert sorted(both[0].tolist()) == list(range(50))  # a permutation
    assert not torch.equal(alone, epoch_orders(50, "per_seed", 3, [8], epoch=3))
    assert epoch_orders(50, "shared", 3, [7, 8], epoch=2).shape == (50,)


def test_streamed_batches_per_copy_are_the_in_memory_ones():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(23, 2, 3, generator=g), torch.randint(0, 3, (23,), generator=g)
    memory = DataBundle("t", "multiclass", x, y, x, y, num_classes=3)
    streamed = DataBundle("t", "multiclass", Samples(TensorDataset(x, y)), y, x, y, num_classes=3)
    orders = epoch_orders(23, "per_seed", 0, [1, 2, 3], epoch=1)
    got = list(epoch_batches(streamed, orders, 5))
    want = list(epoch_batches(memory, orders, 5))
    assert len(got) == len(want) == 5 and got[-1][0].shape == (3, 3, 2, 3)  # 23 = 4 x 5 + 3
    for (xa, ya), (xb, yb) in zip(got, want):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    for i in range(3):  # copy i's rows in its own order
        assert torch.equal(torch.cat([b[0][i] for b in want]), x[orders[i]])


@pytest.mark.parametrize("strategy", ["vectorized", "sequential"])
def test_a_copy_in_a_per_seed_job_equals_its_seed_alone(make_cfg, tmp_path, strategy):
    per_seed = ["trainer.data_order=per_seed", f"trainer.strategy={strategy}", "model.dropout=0.2"]
    run(make_cfg(*QUICK, *per_seed, "seeds=[0,1,2]", output_dir=tmp_path / "three"))
    run(make_cfg(*QUICK, *per_seed, "seeds=[1]", output_dir=tmp_path / "alone"))
    three, alone = _seed_records(tmp_path / "three", 1), _seed_records(tmp_path / "alone", 1)
    # one plain module per copy: the same operations, the same numbers; a stack of 3 against a
    # stack of 1 sums in other shapes: float32 rounding
    _close(three, alone, rel=1e-4 if strategy == "vectorized" else 1e-12)
    summary = json.loads((tmp_path / "three" / "summary.json").read_text())
    assert summary["config"]["trainer"]["data_order"] == "per_seed"  # what the report reads


def test_per_seed_orders_stacked_and_sequential_agree(make_cfg, tmp_path):
    common = [*QUICK, "trainer.data_order=per_seed", "seeds=[0,1]"]
    run(make_cfg(*common, "trainer.strategy=vectorized", output_dir=tmp_path / "v"))
    run(make_cfg(*common, "trainer.strategy=sequential", output_dir=tmp_path / "s"))
    for seed in (0, 1):
        _close(_seed_records(tmp_path / "v", seed), _seed_records(tmp_path / "s", seed), 1e-4)
    # and a shared order is another run: the seeds saw other batches
    run(make_cfg(*QUICK, "seeds=[0,1]", output_dir=tmp_path / "shared"))
    shared = _seed_records(tmp_path / "shared", 1)[-1]["val/loss"]
    assert shared != pytest.approx(_seed_records(tmp_path / "v", 1)[-1]["val/loss"], rel=1e-6)
