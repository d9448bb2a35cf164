"""Tiny image datasets written in the exact on-disk formats torchvision's classes read.

MNIST/FashionMNIST: big-endian IDX files under ``<root>/<Class>/raw/``. CIFAR: latin-1 pickles of
``{"data": uint8 [N, 3072], "labels" | "fine_labels": [...]}`` under ``cifar-10-batches-py/`` or
``cifar-100-python/``. CIFAR verifies md5 sums against lists on the class; :func:`trust_cifar`
points those lists at the tiny files' own sums (test only), so the real integrity check runs.
"""

from __future__ import annotations

import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
from torchvision import datasets

CIFAR10_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def _idx(path: Path, array: np.ndarray) -> None:
    """IDX: two zero bytes, type code 0x08 (uint8), the number of dims, each dim as >i4."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">i", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def balanced_labels(n: int, classes: int) -> np.ndarray:
    return np.arange(n) % classes


def write_mnist(root: Path, folder: str = "MNIST", n_train: int = 40, n_test: int = 20):
    """IDX files for ``datasets.MNIST``/``FashionMNIST`` (``folder``); returns the raw arrays."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = balanced_labels(n, 10).astype(np.uint8)
        _idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        out[prefix] = (images, labels)
    return out


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar(root: Path, classes: int = 10, per_class: int = 10, test_per_class: int = 4):
    """Pickles for ``datasets.CIFAR10`` (classes=10) or ``CIFAR100`` (classes=100).

    Returns ``(train_images [N, 32, 32, 3], train_labels)`` and writes the md5 sums to
    ``<folder>/md5.pkl`` for :func:`trust_cifar`.
    """
    cifar10 = classes == 10
    folder = root / ("cifar-10-batches-py" if cifar10 else "cifar-100-python")
    folder.mkdir(parents=True, exist_ok=True)
    label_key = "labels" if cifar10 else "fine_labels"
    rng = np.random.default_rng(1)

    def batch(n: int) -> dict:
        return {
            "data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            label_key: balanced_labels(n, classes).tolist(),
        }

    sums = {}
    if cifar10:
        train = [batch(per_class * classes // 5 * 1) for _ in range(5)]
        files = {f"data_batch_{i + 1}": b for i, b in enumerate(train)}
        files["test_batch"] = batch(test_per_class * classes)
        meta_name, meta = "batches.meta", {"label_names": CIFAR10_NAMES}
    else:
        train = [batch(per_class * classes)]
        files = {"train": train[0], "test": batch(test_per_class * classes)}
        meta_name, meta = "meta", {"fine_label_names": [f"class_{i}" for i in range(classes)]}
    for name, content in {**files, meta_name: meta}.items():
        with open(folder / name, "wb") as f:
            pickle.dump(content, f)
        sums[name] = _md5(folder / name)
    with open(folder / "md5.pkl", "wb") as f:
        pickle.dump(sums, f)
    data = np.concatenate([b["data"] for b in train])
    labels = sum((b[label_key] for b in train), [])
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.array(labels)


def trust_cifar(monkeypatch, root: Path, classes: int = 10) -> None:
    """Point the class's md5 lists at the tiny files' sums (the real check then passes)."""
    cls = datasets.CIFAR10 if classes == 10 else datasets.CIFAR100
    folder = root / cls.base_folder
    with open(folder / "md5.pkl", "rb") as f:
        sums = pickle.load(f)
    monkeypatch.setattr(cls, "train_list", [[n, sums[n]] for n, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[n, sums[n]] for n, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": sums[cls.meta["filename"]]})
