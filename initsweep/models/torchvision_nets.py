"""torchvision's ResNet-18 and EfficientNet-B0/B1, head replaced for the task.

The network is ``net`` inside a thin wrapper, so parameter names read ``net.conv1.weight``,
``net.fc.bias`` (ResNet) or ``net.classifier.1.bias`` (EfficientNet). Small images (under 64
pixels, e.g. 32×32 CIFAR) get a stride-1 stem and ResNet loses its stem max-pool, so the last
feature map is not below one pixel; the stem keeps its kernel, so pretrained weights still apply.
``resize`` instead upsamples inputs to the resolution the weights were trained at.

``pretrained=True`` loads torchvision's ImageNet weights from torch's hub cache (downloading them
when ``download`` allows and the network does). ``pretrained_params`` names the parameters that
came from the checkpoint, so the init library can leave them alone and initialise only the new
head.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from urllib.error import URLError

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from initsweep.errors import ConfigError, first_line, invalid

# arch -> (weights enum name, activation (the gain of init.gain=act), head attribute path)
ARCHS = {
    "resnet18": ("ResNet18_Weights", "relu", "fc"),
    "efficientnet_b0": ("EfficientNet_B0_Weights", "silu", "classifier.1"),
    "efficientnet_b1": ("EfficientNet_B1_Weights", "silu", "classifier.1"),
}


def _state_dict(arch: str, download: bool) -> dict[str, Tensor]:
    """The ImageNet checkpoint from torch's hub cache; one clear line when it is not there."""
    weights = torchvision.models.get_weight(f"{ARCHS[arch][0]}.DEFAULT")
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
    how = (
        f"put {os.path.basename(weights.url)} (from {weights.url}) in {os.path.dirname(path)} "
        "(TORCH_HOME moves it), or use model.pretrained=false"
    )
    if not os.path.exists(path) and not download:
        raise ConfigError(
            f"model.pretrained=true: {arch} weights are not in the cache {path} "
            f"(model.download=false); {how}"
        )
    try:
        return weights.get_state_dict(progress=False, check_hash=False)
    except (URLError, RuntimeError, OSError) as e:
        reason = first_line(e)
        raise ConfigError(
            f"model.pretrained=true: {arch} weights are not in the cache {path} and the "
            f"download failed ({reason}); {how}"
        ) from None


def _stem(net: nn.Module, arch: str) -> tuple[nn.Module, str, nn.Conv2d]:
    """The first conv: its parent module, its attribute name and the conv itself."""
    parent = net if arch == "resnet18" else net.features[0]
    name = "conv1" if arch == "resnet18" else "0"
    return parent, name, getattr(parent, name)


def _adapt_channels(conv: nn.Conv2d, channels: int) -> nn.Conv2d:
    """A stem conv for ``channels`` inputs. For 1 channel the RGB kernels are summed, which is
    exactly the 3-channel conv applied to the gray image repeated three times."""
    new = nn.Conv2d(
        channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        bias=conv.bias is not None,
    )
    if channels == 1:
        with torch.no_grad():
            new.weight.copy_(conv.weight.sum(1, keepdim=True))
    return new


class TorchvisionNet(nn.Module):
    """A torchvision classifier as ``net``, with the task's head and small-image handling."""

    def __init__(
        self,
        input_shape: Sequence[int],
        out_features: int,
        arch: str = "resnet18",
        pretrained: bool = False,
        download: bool = True,
        resize: int | None = None,
        small_input: bool | None = None,
        dropout: float | None = None,
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise invalid("model.arch", arch, f"use one of {', '.join(ARCHS)}")
        if len(input_shape) != 3:
            raise invalid(
                "model", arch, f"needs images [C, H, W], the dataset gives {list(input_shape)}"
            )
        _, self.activation, head = ARCHS[arch]
        self.arch = arch  # what make bench timed (initsweep/train/strategy.py)
        self.output_layer = f"net.{head}"
        self.resize = resize
        kwargs = {} if dropout is None or arch == "resnet18" else {"dropout": dropout}
        net = getattr(torchvision.models, arch)(weights=None, **kwargs)
        if pretrained:
            net.load_state_dict(_state_dict(arch, download))
        loaded = {n for n, _ in net.named_parameters()} if pretrained else set()

        # input channels: a new stem conv (summed RGB kernels for gray images)
        channels, height, width = input_shape
        parent, name, conv = _stem(net, arch)
        if channels != 3:
            setattr(parent, name, _adapt_channels(conv, channels))
            if channels != 1:  # a fresh conv: not from the checkpoint
                loaded -= {
                    n for n in loaded if n.startswith("conv1.") or n.startswith("features.0.0.")
                }
        # small images: stride-1 stem (and no ResNet max-pool) keeps the resolution
        side = resize or min(height, width)
        if small_input if small_input is not None else side < 64:
            getattr(parent, name).stride = (1, 1)
            if arch == "resnet18":
                net.maxpool = nn.Identity()

        # the task's head replaces the 1000-class ImageNet layer
        if arch == "resnet18":
            net.fc = nn.Linear(net.fc.in_features, out_features)
        else:
            net.classifier[1] = nn.Linear(net.classifier[1].in_features, out_features)
        self.net = net
        self.pretrained_params = frozenset(
            f"net.{n}" for n in loaded if not n.startswith(head + ".")
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.resize:
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear")
        return self.net(x)


def resnet18(input_shape: Sequence[int], out_features: int, **kwargs) -> TorchvisionNet:
    """ResNet-18 (He et al. 2016, `Deep Residual Learning for Image Recognition`)."""
    return TorchvisionNet(input_shape, out_features, arch="resnet18", **kwargs)


def efficientnet_b0(input_shape: Sequence[int], out_features: int, **kwargs) -> TorchvisionNet:
    """EfficientNet-B0 (Tan & Le 2019, `EfficientNet: Rethinking Model Scaling for CNNs`)."""
    return TorchvisionNet(input_shape, out_features, arch="efficientnet_b0", **kwargs)


def efficientnet_b1(input_shape: Sequence[int], out_features: int, **kwargs) -> TorchvisionNet:
    """EfficientNet-B1 (Tan & Le 2019), native resolution 240 px."""
    return TorchvisionNet(input_shape, out_features, arch="efficientnet_b1", **kwargs)
