r"""Every parameter of any ``nn.Module``, as the init library sees it: which layer owns it.

A weight scheme fills a tensor; what the tensor *is* depends on its module, and these are the
conventions (each the reference's, PyTorch's where frameworks differ):

- **Fans** are PyTorch's (``torch.nn.init._calculate_fan_in_and_fan_out``) of the tensor as
  stored: a Linear or Conv weight ``(out, in/groups, *k)`` has fan_in = in/groups·k and
  fan_out = out·k (PyTorch counts every output channel, also for a grouped conv); a
  ConvTranspose weight ``(in, out/groups, *k)`` is read the same way, as ``torch.nn.init`` does;
  an **Embedding** ``(num_embeddings, embedding_dim)`` has fan_in = embedding_dim and
  fan_out = num_embeddings — what ``torch.nn.init.*_(emb.weight)`` gives. (PyTorch's own
  Embedding default is N(0, 1): ``init=normal``.)
- **Stacked matrices**: an RNN/LSTM/GRU weight stacks its gates along dim 0 (1, 4 or 3 blocks,
  PyTorch's order i, f, g, o / r, z, n), ``nn.MultiheadAttention.in_proj_weight`` and a fused
  ``qkv`` Linear (timm's name for it) stack q, k and v (3 blocks). Variance schemes draw the
  stacked tensor as it is, as ``torch.nn.init`` and Keras do; a scheme whose definition is a
  matrix structure (``orthogonal``, ``identity``) makes each block that structure (an
  orthogonal recurrent matrix per gate, Saxe et al. 2014; an identity per gate, Le et al.
  2015), unless its ``blocks`` says otherwise.
- **Groups**: structure schemes on a grouped or depthwise conv keep the groups
  (``torch.nn.init.dirac_(w, groups)``: a depthwise identity maps each channel to itself).
- **Recurrent defaults**: PyTorch draws every RNN/LSTM/GRU parameter from U(±1/√hidden_size);
  the ``pytorch_default`` scheme follows it there (``torch/nn/modules/rnn.py``).
- **Normalisation layers** (BatchNorm, LayerNorm, GroupNorm, InstanceNorm, RMSNorm) keep
  weight 1 and bias 0 (reset here, so a model's own init cannot leak in); ``init.rules`` can
  give them a scheme.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

# gates stacked in an RNN's weights: PyTorch's layouts
_GATES = {nn.LSTM: 4, nn.LSTMCell: 4, nn.GRU: 3, nn.GRUCell: 3, nn.RNN: 1, nn.RNNCell: 1}
NORM_LAYERS = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*d, InstanceNorm*d (affine)
    nn.LayerNorm,
    nn.GroupNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)


@dataclass(frozen=True)
class Site:
    """One parameter: its dotted name, the module that owns it, and what follows from that.

    ``kind`` is ``weight`` (≥ 2 dims: drawn by the weight scheme), ``bias`` (a layer's bias or
    a recurrent layer's bias vectors: the bias rules), ``norm`` (a normalisation layer's scale
    or shift) or ``other`` (a 1-d parameter of no known role: left as the model made it).
    ``blocks`` counts the matrices stacked along dim 0; ``context`` holds the module facts a
    scheme may ask for by keyword (``groups``, ``hidden_size``).
    """

    name: str
    module_name: str
    module: nn.Module
    kind: str
    blocks: int = 1
    context: dict = field(default_factory=dict)

    @property
    def module_types(self) -> set[str]:
        """The owning module's class name and its bases' (``Linear`` matches a subclass too)."""
        return {c.__name__ for c in type(self.module).__mro__}


def sites(model: nn.Module) -> dict[str, Site]:
    """Every parameter of ``model`` by dotted name, with its owning module (see the module doc)."""
    out: dict[str, Site] = {}
    for module_name, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            name = f"{module_name}.{pname}" if module_name else pname
            out[name] = _site(name, module_name, module, pname, p.dim())
    return out


def _site(name: str, module_name: str, module: nn.Module, pname: str, dims: int) -> Site:
    context: dict = {}
    blocks = 1
    if isinstance(module, NORM_LAYERS):
        return Site(name, module_name, module, "norm")
    if isinstance(module, nn.modules.conv._ConvNd):
        context["groups"] = module.groups
    if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
        context["hidden_size"] = module.hidden_size
        if pname.startswith(("weight_ih", "weight_hh", "bias_ih", "bias_hh")):
            blocks = next(g for cls, g in _GATES.items() if isinstance(module, cls))
        if pname.startswith("weight_hr"):  # an LSTM's projection: a plain matrix
            blocks = 1
    elif isinstance(module, nn.MultiheadAttention) and pname in ("in_proj_weight", "in_proj_bias"):
        blocks = 3
    elif isinstance(module, nn.Linear) and module_name.rsplit(".", 1)[-1] in ("qkv", "in_proj"):
        blocks = 3 if module.out_features % 3 == 0 else 1
    if dims >= 2:
        kind = "weight"
    elif pname.startswith("bias"):
        kind = "bias"
    else:
        kind = "other"
    return Site(name, module_name, module, kind, blocks, context)
