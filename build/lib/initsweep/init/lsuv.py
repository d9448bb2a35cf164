r"""LSUV: layer-sequential unit-variance init (Mishkin & Matas 2016), a data-dependent scheme.

`All you need is a good init` - Mishkin, D. & Matas, J. (ICLR 2016), Algorithm 1:

1. pre-initialise every conv/FC weight with an orthonormal matrix (Saxe et al. 2014) — the
   scheme :func:`lsuv_`, drawn with the other schemes;
2. for each conv/FC layer L, first to last: while :math:`|\mathrm{Var}(B_L) - 1| \ge Tol_{var}`
   and :math:`T_i < T_{max}`: forward a mini-batch, :math:`W_L \leftarrow W_L / \sqrt{\mathrm{Var}(B_L)}`
   — :func:`lsuv_rescale`, run by ``initialize`` once every weight and bias is set.

Choices, where the paper leaves them open (the authors' Caffe, PyTorch and Keras code differ):

- B_L is the layer's own output (the pre-activation, as in the authors' Caffe and PyTorch code),
  measured *without its bias*: biases are untouched (paper), and a bias rule such as the output
  prior must not enter the variance. Var is over every element of the output blob.
- Tol_var = 0.1 and T_max = 10: the paper names them only as symbols; these are the values of the
  first author's Keras reference (``ducha-aiki/LSUV-keras``: |var − 1| ≤ 0.1, 10 trials).
- One fixed batch of ``batch_size`` training inputs, drawn per seed, in eval mode (no dropout).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from initsweep.errors import ConfigError
from initsweep.init.registry import register_scheme

LSUV_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)  # the "conv/FC" layers of Algorithm 1


@register_scheme
def lsuv_(
    tensor: Tensor,
    tol_var: float = 0.1,
    t_max: int = 10,
    batch_size: int = 256,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""LSUV's pre-init: an orthonormal matrix (``orthogonal_`` with gain 1, Haar-random).

    The unit-variance rescaling that follows needs data; ``initialize`` runs it (see
    :func:`lsuv_rescale`) on ``batch_size`` training inputs with tolerance ``tol_var`` and at most
    ``t_max`` trials per layer. No gain: the rescaling would undo it.
    """
    if not tol_var > 0:
        raise ConfigError(f"init.tol_var={tol_var!r} is invalid: must be > 0")
    if t_max < 1 or batch_size < 2:
        raise ConfigError(
            f"init.t_max={t_max!r}, init.batch_size={batch_size!r} is invalid: "
            "need t_max >= 1 and batch_size >= 2"
        )
    with torch.no_grad():
        return torch.nn.init.orthogonal_(tensor, gain=1.0, generator=generator)


class _Stop(Exception):
    """Raised by the hook once the layer's output is captured: later layers need not run."""


def _output_variance(model: nn.Module, layer: nn.Module, x: Tensor) -> float:
    captured: list[Tensor] = []

    def hook(module, inputs, output):
        out = output.detach()
        if module.bias is not None:  # measure W x: the bias is untouched and not rescaled
            b = module.bias.detach()  # a Linear's units are the last dim, a conv's channels dim 1
            out = out - (
                b if isinstance(module, nn.Linear) else b.view(-1, *[1] * (out.dim() - 2))
            )
        captured.append(out)
        raise _Stop

    handle = layer.register_forward_hook(hook)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not captured:
        raise ConfigError("init.name='lsuv': a rescaled layer did not run in the forward pass")
    return float(captured[0].double().var(unbiased=False))


def _execution_order(model: nn.Module, layers: dict[str, nn.Module], x: Tensor) -> list[str]:
    order: list[str] = []
    handles = [
        m.register_forward_hook(lambda mod, i, o, n=n: order.append(n) if n not in order else None)
        for n, m in layers.items()
    ]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return [n for n in order if n in layers]


@torch.no_grad()
def lsuv_rescale(
    model: nn.Module, x: Tensor, targets: dict[str, dict], assignment: dict[str, dict]
) -> None:
    """Algorithm 1's loop over the layers whose weight got ``lsuv`` (``targets``: param → params).

    Writes per parameter the variance before, the trials used and the final variance into
    ``assignment`` (init.json shows them).
    """
    layers = {}
    for pname in targets:
        module = model.get_submodule(pname.rpartition(".")[0])
        if module.get_parameter(pname.rpartition(".")[2]).numel() == 0:
            assignment[pname]["lsuv"] = "no-op (zero-element weight)"  # Var of nothing: no scale
        elif isinstance(module, LSUV_LAYERS) and pname.endswith("weight"):
            layers[pname] = module
        else:  # e.g. an LSTM's weight_hh: no output blob of its own; keep the orthonormal pre-init
            assignment[pname]["lsuv"] = "pre-init only (not a Linear/Conv weight)"
    was_training = model.training
    model.eval()
    try:
        order = _execution_order(model, layers, x)
        for pname in set(layers) - set(order):  # e.g. an attention's out_proj, used as a tensor
            assignment[pname]["lsuv"] = "pre-init only (the layer never ran as a module)"
        for pname in order:
            layer, opts = layers[pname], targets[pname]
            var = first = _output_variance(model, layer, x)
            trials = 0
            while abs(var - 1.0) >= opts["tol_var"] and trials < opts["t_max"]:
                if var <= 0.0:  # a dead input: no rescaling can help, leave the weight as it is
                    break
                layer.weight.div_(var**0.5)
                trials += 1
                var = _output_variance(model, layer, x)
            assignment[pname].update(lsuv_var_before=first, lsuv_trials=trials, lsuv_var=var)
    finally:
        model.train(was_training)
