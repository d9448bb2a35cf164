"""Models: each tells the init library its ``activation`` and its ``output_layer``.

Every constructor takes ``input_shape`` and ``out_features`` (the job fills them in from the
dataset) plus its own parameters; the yaml in ``initsweep/conf/model/`` is a ``_partial_`` ``_target_``.
"""

from initsweep.models.cnn import CNN
from initsweep.models.deep_mlp import DeepMLP
from initsweep.models.lstm import LSTMNet
from initsweep.models.mlp import MLP
from initsweep.models.torchvision_nets import (
    TorchvisionNet,
    efficientnet_b0,
    efficientnet_b1,
    resnet18,
)

__all__ = [
    "CNN",
    "MLP",
    "DeepMLP",
    "LSTMNet",
    "TorchvisionNet",
    "efficientnet_b0",
    "efficientnet_b1",
    "resnet18",
]
