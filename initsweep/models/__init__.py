"""Models: each tells the init library its ``activation`` and its ``output_layer``.

Every constructor takes ``input_shape`` and ``out_features`` (the job fills them in from the
dataset) plus its own parameters; the yaml in ``initsweep/conf/model/`` is a ``_partial_`` ``_target_``.
"""

from initsweep.models.cnn import CNN
from initsweep.models.deep_mlp import DeepMLP
from initsweep.models.lstm import LSTMNet
from initsweep.models.mlp import MLP
from initsweep.models.residual import ResidualMLP, ResNet
from initsweep.models.transformer import GPT

# torchvision (1 s of imports, most of it torch._dynamo) loads only when one of its networks is
# asked for, so every other job starts that much sooner
_TORCHVISION = ("TorchvisionNet", "efficientnet_b0", "efficientnet_b1", "resnet18")


def __getattr__(name: str):
    if name in _TORCHVISION:
        from initsweep.models import torchvision_nets

        globals().update({n: getattr(torchvision_nets, n) for n in _TORCHVISION})
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CNN",
    "GPT",
    "MLP",
    "DeepMLP",
    "LSTMNet",
    "ResNet",
    "ResidualMLP",
    "TorchvisionNet",
    "efficientnet_b0",
    "efficientnet_b1",
    "resnet18",
]
