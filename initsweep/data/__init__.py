"""Datasets: builders return a DataBundle (tensors + task + statistics for the bias rules)."""

from initsweep.data.bundle import TASKS, DataBundle

__all__ = ["TASKS", "DataBundle"]
