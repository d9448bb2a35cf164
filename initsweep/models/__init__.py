"""Models: each tells the init library its ``activation`` and its ``output_layer``."""

from initsweep.models.mlp import MLP

__all__ = ["MLP"]
