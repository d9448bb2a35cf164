"""Your own data: files in four formats, any torch Dataset, streamed batch by batch."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import Dataset

from initsweep.data.files import infer_task, load, torch_dataset
from initsweep.data.stream import Samples
from initsweep.errors import ConfigError
from initsweep.files import read_jsonl
from initsweep.job import run

N = 60


def table(task: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 3)).astype(np.float32)
    if task == "regression":
        return x, rng.lognormal(size=N)
    return x, np.arange(N) % (2 if task == "binary" else 4)


def write(tmp_path, suffix: str, x: np.ndarray, y: np.ndarray):
    path = tmp_path / f"data{suffix}"
    if suffix == ".npz":
        np.savez(path, x=x, y=y)
    elif suffix == ".pt":
        torch.save({"x": torch.as_tensor(x), "y": torch.as_tensor(y)}, path)
    else:
        frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(target=y)
        frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    return str(path)


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
@pytest.mark.parametrize("suffix", [".npz", ".pt", ".csv", ".parquet"])
def test_a_data_file_in_any_format_gives_the_same_bundle(tmp_path, suffix, task):
    x, y = table(task)
    b = load(write(tmp_path, suffix, x, y), target="target")
    # the task is inferred from the targets; the split is the seeded one of every builder
    assert b.task == task and b.input_shape == (3,)
    ref = load(write(tmp_path, ".npz", x, y))
    assert torch.allclose(b.x_train, ref.x_train) and torch.allclose(b.y_train, ref.y_train)
    if task == "multiclass":
        assert b.num_classes == 4


def test_a_table_takes_named_feature_columns(tmp_path):
    x, y = table("regression")
    path = write(tmp_path, ".csv", x, y)
    b = load(path, target="target", features=["c", "a"])
    assert b.input_shape == (2,)


@pytest.mark.parametrize(
    "spoil, words",
    [
        (lambda f: f.drop(columns=["target"]), ["no column ['target']", "a, b, c"]),
        (lambda f: f.assign(b=f["b"].where(f.index != 7)), ["column 'b'", "NaN", "row 7"]),
        (lambda f: f.assign(a=["x"] * len(f)), ["column 'a'", "give numbers"]),
    ],
    ids=["missing-column", "nan", "strings"],
)
def test_a_bad_table_is_one_line_naming_the_column(tmp_path, spoil, words):
    x, y = table("regression")
    frame = spoil(pd.DataFrame(x, columns=["a", "b", "c"]).assign(target=y))
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ConfigError) as err:
        load(str(tmp_path / "bad.csv"), target="target")
    assert all(w in str(err.value) for w in words) and "\n" not in str(err.value)


def test_bad_arrays_are_refused_in_one_line(tmp_path):
    np.savez(tmp_path / "lengths.npz", x=np.zeros((5, 2)), y=np.zeros(4))
    np.savez(tmp_path / "objects.npz", x=np.array([[1], "a"], dtype=object), y=np.zeros(2))
    torch.save({"inputs": torch.zeros(3)}, tmp_path / "keys.pt")
    for name, words in [
        ("lengths.npz", "x has shape [5, 2] and y [4]; y must hold one target per sample"),
        ("objects.npz", "an array holds Python objects (dtype=object)"),
        ("keys.pt", "a dict with tensors x and y"),
    ]:
        with pytest.raises(ConfigError) as err:
            load(str(tmp_path / name))
        assert words in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="a binary task needs 0/1 targets"):
        load(write(tmp_path, ".npz", *table("multiclass")), task="binary")


def test_task_inference_follows_the_targets():
    assert infer_task(torch.tensor([0.5, 1.0])) == "regression"
    assert infer_task(torch.tensor([0, 1, 1])) == "binary"
    assert infer_task(torch.tensor([0, 2, 1])) == "multiclass"


class Pairs(Dataset):
    """A Dataset of ``(x [1, 4, 4], y)`` items, as a user's own class would be."""

    def __init__(self, n: int = 50, regression: bool = False) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(n, 1, 4, 4, generator=g)
        self.y = self.x.sum((1, 2, 3)) if regression else (self.x.mean((1, 2, 3)) > 0.5).long()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def test_a_streamed_dataset_is_read_lazily_in_the_shared_order():
    streamed = torch_dataset(Pairs(), stream=True, val_fraction=0.2)
    memory = torch_dataset(Pairs(), stream=False, val_fraction=0.2)
    assert isinstance(streamed.x_train, Samples) and isinstance(memory.x_train, torch.Tensor)
    assert streamed.task == memory.task == "binary" and streamed.input_shape == (1, 4, 4)
    # the same split, the same targets; the inputs read back are the in-memory ones
    assert torch.equal(streamed.y_train, memory.y_train)
    order = torch.randperm(len(memory.x_train), generator=torch.Generator().manual_seed(3))
    batches = list(streamed.x_train[order].batches(16, "cpu"))
    assert [len(b) for b in batches] == [16, 16, 8]
    assert torch.equal(torch.cat(batches), memory.x_train[order])


def test_a_dataset_whose_items_are_not_pairs_is_one_line():
    class Dicts(Pairs):
        def __getitem__(self, i):
            return {"x": self.x[i], "y": self.y[i]}

    with pytest.raises(ConfigError, match="an item is dict; initsweep needs \\(x, y\\) pairs"):
        torch_dataset(Dicts())


FAKE = [  # torchvision's FakeData as "your own Dataset": tensors through ToTensor, 3 classes
    "dataset=torch_dataset",
    "dataset.train._target_=torchvision.datasets.FakeData",
    "+dataset.train.size=48",
    "+dataset.train.image_size=[1,4,4]",
    "+dataset.train.num_classes=3",
    "+dataset.train.transform._target_=torchvision.transforms.ToTensor",
    "seeds=[0,1]",
    "trainer.batch_size=8",
    "model.dropout=0.2",
]


@pytest.mark.slow
def test_a_streamed_job_trains_exactly_like_the_same_data_in_memory(make_cfg, tmp_path):
    for stream in ("true", "false"):
        run(make_cfg(*FAKE, f"dataset.stream={stream}", output_dir=tmp_path / stream))
    a, b = (read_jsonl(tmp_path / s / "metrics.jsonl") for s in ("true", "false"))
    assert len(a) >= 10 and a == b  # the same batches in the same order, to the last bit
    summary = json.loads((tmp_path / "true" / "summary.json").read_text())
    assert summary["status"] == "finished"
