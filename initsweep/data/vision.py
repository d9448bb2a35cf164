"""torchvision image datasets, loaded once through torchvision's own classes into tensors.

The images (uint8 on disk) become one float tensor ``[N, C, H, W]``, normalised per channel with
the dataset's usual training-set mean and std; ``bundle.to(device)`` then moves them to the GPU in
one copy (all four fit: CIFAR-10 train is 0.6 GB in float32).

Splits: with ``test_fraction="official"`` (the yaml default) the official test set is the
held-out test split and val is a seeded ``val_fraction`` of the training set (0.1: 6000 images of
(Fashion-)MNIST, 5000 of CIFAR). With ``test_fraction=None`` (the Python default) there is no test
split and val is the official test set unless ``val_fraction`` splits the training set instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.error import URLError

import torch
from torchvision import datasets

from initsweep.data.bundle import DataBundle
from initsweep.data.transforms import finish
from initsweep.errors import ConfigError, first_line, invalid


@dataclass(frozen=True)
class VisionSpec:
    cls: type
    mean: tuple[float, ...]  # per channel, of the training images scaled to [0, 1]
    std: tuple[float, ...]
    folder: str  # where torchvision looks, relative to the root
    files: str  # what must be there
    archive: str  # what to download and unpack by hand


SPECS = {
    "mnist": VisionSpec(
        datasets.MNIST,
        (0.1307,),
        (0.3081,),
        "MNIST/raw",
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte",
        "the four *-ubyte.gz files from https://ossci-datasets.s3.amazonaws.com/mnist/ (gunzipped)",
    ),
    "fashion_mnist": VisionSpec(
        datasets.FashionMNIST,
        (0.2860,),
        (0.3530,),
        "FashionMNIST/raw",
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte",
        "the four *-ubyte.gz files from http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/ (gunzipped)",
    ),
    "cifar10": VisionSpec(
        datasets.CIFAR10,
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        "cifar-10-batches-py",
        "data_batch_1..5, test_batch, batches.meta",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz unpacked",
    ),
    "cifar100": VisionSpec(
        datasets.CIFAR100,
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
        "cifar-100-python",
        "train, test, meta",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz unpacked",
    ),
}


def _open(name: str, root: str, train: bool, download: bool):
    """torchvision's dataset object; missing files become one line saying where and how."""
    spec = SPECS[name]
    try:
        return spec.cls(root, train=train, download=download)
    except (RuntimeError, URLError, OSError) as e:
        where = os.path.join(os.path.abspath(root), spec.folder)
        why = "download failed" if download else "dataset.download=false"
        reason = first_line(e)
        raise ConfigError(
            f"dataset {name}: files not found in {where} ({why}: {reason}); expected {spec.files}. "
            f"Run once with network and dataset.download=true, or put {spec.archive} there "
            f"(paths.data_dir={root} sets the root)"
        ) from None


def _images(ds) -> torch.Tensor:
    """``[N, C, H, W]`` float in [0, 1] from MNIST-style ``[N, H, W]`` uint8 tensors or CIFAR's
    ``[N, H, W, C]`` uint8 arrays."""
    data = torch.as_tensor(ds.data)
    data = data.unsqueeze(1) if data.dim() == 3 else data.permute(0, 3, 1, 2)
    return data.float().div_(255.0)


def _normalize(x: torch.Tensor, spec: VisionSpec) -> torch.Tensor:
    mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.std).view(1, -1, 1, 1)
    return x.sub_(mean).div_(std)


def load(
    name: str,
    root: str = "data",
    download: bool = True,
    normalize: bool = True,
    val_fraction: float | None = None,
    test_fraction: float | str | None = None,
    split_seed: int = 0,
    limit: int | None = None,
    imbalance: Mapping | None = None,
    one_vs_rest: int | str | None = None,
) -> DataBundle:
    """One of :data:`SPECS` as a :class:`DataBundle` (multiclass, or binary with one_vs_rest).

    ``normalize=False`` keeps pixels in [0, 1] (as Keras tutorials feed FashionMNIST);
    ``test_fraction``: ``"official"``, a fraction of the training set, or ``None`` (see above).
    """
    official = test_fraction == "official"
    if isinstance(test_fraction, str) and not official:
        raise invalid(
            "dataset.test_fraction", test_fraction, "use official, a fraction in (0, 1) or null"
        )
    if official and val_fraction is None:
        raise ConfigError(
            "dataset.val_fraction=None is invalid with dataset.test_fraction=official: the "
            "official test set is the test split; give a share of the training set for val "
            "(e.g. 0.1), or set dataset.test_fraction=null to validate on the official test set"
        )
    spec = SPECS[name]
    train, test = _open(name, root, True, download), _open(name, root, False, download)
    x_train, x_test = _images(train), _images(test)
    if normalize:
        x_train, x_test = _normalize(x_train, spec), _normalize(x_test, spec)
    return finish(
        name,
        "multiclass",
        x_train,
        torch.as_tensor(train.targets),
        num_classes=len(train.classes),
        class_names=list(train.classes),
        val=None if official else (x_test, torch.as_tensor(test.targets)),
        val_fraction=val_fraction,
        test=(x_test, torch.as_tensor(test.targets)) if official else None,
        test_fraction=None if official else test_fraction,
        split_seed=split_seed,
        limit_n=limit,
        imbalance_spec=imbalance,
        one_vs_rest=one_vs_rest,
    )


def mnist(**kwargs) -> DataBundle:
    """MNIST handwritten digits: 60000 + 10000 images 1×28×28, 10 classes."""
    return load("mnist", **kwargs)


def fashion_mnist(**kwargs) -> DataBundle:
    """Fashion-MNIST (Xiao et al. 2017): 60000 + 10000 clothing images 1×28×28, 10 classes."""
    return load("fashion_mnist", **kwargs)


def cifar10(**kwargs) -> DataBundle:
    """CIFAR-10 (Krizhevsky 2009): 50000 + 10000 colour images 3×32×32, 10 classes."""
    return load("cifar10", **kwargs)


def cifar100(**kwargs) -> DataBundle:
    """CIFAR-100 (Krizhevsky 2009): 50000 + 10000 colour images 3×32×32, 100 fine classes."""
    return load("cifar100", **kwargs)
