"""Datasets: builders return a DataBundle (tensors + task + statistics for the bias rules).

``embedded`` (scikit-learn tables, digits, generated data), ``vision`` (torchvision's MNIST,
FashionMNIST, CIFAR-10/100) and ``transforms`` (limit, split, imbalance, one-vs-rest), which every
builder runs so the bundle's prior and target statistics describe the transformed training split.
"""

from initsweep.data.bundle import TASKS, DataBundle

__all__ = ["TASKS", "DataBundle"]
