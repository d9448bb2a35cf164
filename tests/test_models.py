"""The model zoo: every model builds from its yaml and trains one step for each task kind."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from hydra import compose, initialize_config_dir
from torch import nn

from initsweep.config import CONF_DIR
from initsweep.errors import ConfigError
from initsweep.job.build import build
from initsweep.models import CNN, DeepMLP, LSTMNet, TorchvisionNet
from initsweep.models.mlp import ACTIVATIONS

# every model yaml is tested: a new conf/model/<name>.yaml needs no edit here; models of token
# ids (task tokens) are tested on token data in tests/test_residual_models.py
TOKEN_MODELS = {"gpt"}
MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml") if p.stem not in TOKEN_MODELS)
# input shapes to try, in order: a model takes the first it accepts (a model refuses an input
# it is not meant for with a ConfigError: a CNN a flat vector, say)
SHAPES = [(64,), (10, 2), (1, 8, 8), (3, 32, 32)]
TASKS = {  # outputs, loss on a batch of 2
    "multiclass": (10, lambda out: F.cross_entropy(out, torch.tensor([1, 7]))),
    "binary": (1, lambda out: F.binary_cross_entropy_with_logits(out[:, 0], torch.ones(2))),
    "regression": (1, lambda out: F.mse_loss(out[:, 0], torch.tensor([0.5, -1.0]))),
}


def make(name: str, shape, out: int, *overrides: str) -> nn.Module:
    with initialize_config_dir(config_dir=str(CONF_DIR)):
        cfg = compose("train", overrides=[f"model={name}", *overrides])
    return build(cfg.model)(input_shape=shape, out_features=out)


def first_fitting(name: str, outputs: int) -> tuple[tuple[int, ...], nn.Module]:
    for shape in SHAPES:
        try:
            return shape, make(name, shape, outputs)
        except ConfigError:
            continue
    raise AssertionError(f"model={name} accepts none of the input shapes {SHAPES}")


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", MODELS)
def test_every_model_builds_and_trains_a_step_for_each_task(name, task):
    torch.manual_seed(0)
    outputs, loss_of = TASKS[task]
    shape, model = first_fitting(name, outputs)
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, outputs)
    loss_of(out).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # the init library's contract: a known activation and a real output layer of the right size
    assert model.activation in set(ACTIVATIONS) | {"silu"}
    head = model.get_submodule(model.output_layer)
    assert isinstance(head, nn.Linear) and head.out_features == outputs


def test_deep_mlp_is_depth_times_width_and_linear_when_asked():
    m = DeepMLP((64,), 10, depth=5, width=32, activation="linear", bias=False)
    linears = [n for n, mod in m.named_modules() if isinstance(mod, nn.Linear)]
    assert len(linears) == 6 and linears[-1] == "out"
    assert all(mod.out_features == 32 for mod in m.body if isinstance(mod, nn.Linear))
    # a deep linear net without biases is a linear map
    x, y = torch.randn(3, 64), torch.randn(3, 64)
    assert torch.allclose(m(2 * x - y), 2 * m(x) - m(y), atol=1e-5)
    with pytest.raises(ConfigError, match="model.depth"):
        DeepMLP((64,), 10, depth=0)


@pytest.mark.parametrize(
    "name, override, key",
    [
        ("mlp", "model.hidden=[0]", "model.hidden=[0]"),
        ("mlp", "model.hidden=[32,0,32]", "model.hidden=[32, 0, 32]"),
        ("cnn", "model.channels=[4,0]", "model.channels=[4, 0]"),
        ("cnn", "model.hidden=[0]", "model.hidden=[0]"),
        ("deep_mlp", "model.width=0", "model.width=0"),
    ],
)
def test_a_layer_of_zero_units_is_refused_naming_the_key(name, override, key):
    # PyTorch builds it (its init only warns) and the output would be the last bias alone
    shape = (1, 8, 8) if name == "cnn" else (64,)
    with pytest.raises(ConfigError) as err:
        make(name, shape, 10, override)
    assert str(err.value).startswith(f"{key} is invalid") and "\n" not in str(err.value)


def test_cnn_with_batch_norm_drops_conv_bias_and_handles_tiny_images():
    m = CNN((1, 8, 8), 10, channels=[4, 4, 4, 4, 4], batch_norm=True)
    convs = [mod for mod in m.modules() if isinstance(mod, nn.Conv2d)]
    assert all(c.bias is None for c in convs)
    assert sum(isinstance(mod, nn.BatchNorm2d) for mod in m.modules()) == 5
    # 8 -> 4 -> 2 -> 1, then no more pooling: 4 channels x 1 pixel reach the output
    assert m.out.in_features == 4
    with pytest.raises(ConfigError, match="model"):
        CNN((64,), 10)


def test_lstm_reads_sequences_and_predicts_from_the_last_step():
    m = LSTMNet((6, 2), 1, hidden_size=8)
    assert isinstance(m.lstm, nn.LSTM) and m.lstm.batch_first
    assert m.output_layer == "out" and m.out.in_features == 8
    x = torch.randn(4, 6, 2)
    x2 = x.clone()
    x2[:, -1] += 1.0
    assert not torch.allclose(m(x), m(x2))
    # images are read row by row: 1x8x8 digits are 8 steps of 8 pixels
    img = LSTMNet((1, 8, 8), 10)
    assert img.lstm.input_size == 8
    rows = torch.randn(2, 1, 8, 8)
    seq = LSTMNet((8, 8), 10)
    seq.load_state_dict(img.state_dict())
    assert torch.allclose(img(rows), seq(rows[:, 0]))


def test_torchvision_small_images_get_a_stride_one_stem():
    r = TorchvisionNet((3, 32, 32), 10, arch="resnet18")
    assert r.net.conv1.stride == (1, 1) and isinstance(r.net.maxpool, nn.Identity)
    big = TorchvisionNet((3, 96, 96), 10, arch="resnet18")
    assert big.net.conv1.stride == (2, 2)
    e = TorchvisionNet((3, 32, 32), 1, arch="efficientnet_b0")
    assert e.net.features[0][0].stride == (1, 1)
    assert e.output_layer == "net.classifier.1" and e.net.classifier[1].out_features == 1
    resized = TorchvisionNet((3, 16, 16), 10, arch="resnet18", resize=64)
    assert resized.net.conv1.stride == (2, 2)  # resized to 64 px: not small, the stem stays
    assert resized(torch.randn(1, 3, 16, 16)).shape == (1, 10)


def test_gray_images_sum_the_rgb_stem_kernels_exactly():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3, padding=1)
    from initsweep.models.torchvision_nets import _adapt_channels

    gray = _adapt_channels(conv, 1)
    gray.bias = conv.bias
    x = torch.randn(2, 1, 10, 10)
    # the 1-channel conv on x equals the RGB conv on x repeated three times
    assert torch.allclose(gray(x), conv(x.repeat(1, 3, 1, 1)), atol=1e-5)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """torch's hub cache pointed at an empty folder (torch.hub.set_dir does the same)."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints"


def test_pretrained_weights_load_from_the_cache_and_the_head_is_new(hub):
    torch.manual_seed(1)
    reference = torchvision.models.resnet18()
    hub.mkdir(parents=True)
    url = torchvision.models.ResNet18_Weights.DEFAULT.url
    torch.save(reference.state_dict(), hub / url.rsplit("/", 1)[-1])
    m = TorchvisionNet((1, 32, 32), 2, arch="resnet18", pretrained=True, download=False)
    assert torch.equal(m.net.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    assert torch.equal(m.net.conv1.weight, reference.conv1.weight.sum(1, keepdim=True))
    assert m.net.fc.out_features == 2
    # the init library leaves these alone: every loaded parameter, not the new head
    assert "net.layer4.1.conv2.weight" in m.pretrained_params
    assert "net.conv1.weight" in m.pretrained_params
    assert not {"net.fc.weight", "net.fc.bias"} & m.pretrained_params
    assert TorchvisionNet((3, 32, 32), 2, arch="resnet18").pretrained_params == frozenset()


def test_pretrained_offline_without_cache_fails_in_one_clear_line(hub):
    with pytest.raises(ConfigError) as e:
        make("efficientnet_b1", (3, 32, 32), 1, "model.pretrained=true", "model.download=false")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("model.pretrained=true")
    assert str(hub) in msg and "model.pretrained=false" in msg


def test_unknown_activation_is_a_config_error():
    with pytest.raises(ConfigError, match="model.activation"):
        CNN((1, 8, 8), 10, activation="swish")
