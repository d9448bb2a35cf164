r"""Deep post-LN and norm-free transformers: DeepNet's DeepNorm and T-Fixup.

Both scale a residual branch's signal path (the attention's value and output projections, the
MLP's two layers) by a function of the depth; DeepNorm also up-weights the skip by α.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from initsweep.errors import ConfigError
from initsweep.init.fans import fans
from initsweep.init.registry import register_scheme
from initsweep.init.residual import Placement, branches, depth, weight

Architecture = Literal["decoder_only", "encoder_only", "encoder_decoder"]
Part = Literal["encoder", "decoder"]


def deepnorm_constants(
    architecture: str, part: str, layers: int, other_layers: int | None = None
) -> tuple[float, float]:
    r"""DeepNorm's :math:`(\alpha, \beta)` for a stack of ``layers`` blocks (DeepNet, Fig. 2).

    encoder-only (N blocks): :math:`((2N)^{1/4}, (8N)^{-1/4})`; decoder-only (M blocks):
    :math:`((2M)^{1/4}, (8M)^{-1/4})`; encoder-decoder: the encoder
    :math:`(0.81 (N^4 M)^{1/16}, 0.87 (N^4 M)^{-1/16})`, the decoder
    :math:`((3M)^{1/4}, (12M)^{-1/4})`, ``other_layers`` the other stack's blocks.
    """
    if architecture != "encoder_decoder":
        return (2 * layers) ** 0.25, (8 * layers) ** -0.25
    if other_layers is None or other_layers < 1:
        raise ConfigError(
            f"init.other_layers={other_layers!r} is invalid: init.architecture=encoder_decoder "
            "needs the other stack's number of blocks (an integer >= 1)"
        )
    if part == "encoder":
        n, m = layers, other_layers
        return 0.81 * (n**4 * m) ** (1 / 16), 0.87 * (n**4 * m) ** (-1 / 16)
    return (3 * layers) ** 0.25, (12 * layers) ** -0.25


def _xavier_std(shape) -> float:
    return math.sqrt(2.0 / sum(fans(shape)))


def _deepnorm_plan(model, facts, params) -> list[Placement]:
    found = branches(model, "deepnorm")
    if any(b.skip is None for b in found):
        raise ConfigError(
            f"init.name='deepnorm' sets the skip scale α of every residual branch: "
            f"{type(model).__name__} declares no skip (declare ResidualBranch.skip, a module "
            "whose float skip_scale multiplies x; model=gpt model.norm=post has it)"
        )
    n = depth(found)
    alpha, beta = deepnorm_constants(
        params["architecture"], params["part"], n, params["other_layers"]
    )
    where = f"{params['architecture']}, {n} blocks"
    plan = [
        Placement(s, None, {}, alpha, f"skip scale α = {alpha:.4g} ({where})")
        for s in dict.fromkeys(b.skip for b in found)
    ]
    why = f"signal path of a residual branch: gain β = {beta:.4g} ({where})"
    plan += [Placement(weight(x), "deepnorm", params, beta, why) for b in found for x in b.layers]
    return plan


@register_scheme(
    moments=lambda shape, architecture, part, other_layers: (0.0, _xavier_std(shape)),
    family="normal",
    residual=_deepnorm_plan,
)
def deepnorm_(
    tensor: Tensor,
    architecture: Architecture = "decoder_only",
    part: Part = "decoder",
    other_layers: int | None = None,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""DeepNorm: :math:`x \leftarrow \mathrm{LN}(\alpha x + G(x))`, Xavier-normal weights with gain
    β on each branch's signal path (the MLP, v and the output projection), 1 elsewhere (q, k).

    `DeepNet: Scaling Transformers to 1,000 Layers` - Wang, H. et al. (2022), Fig. 2 (α and β by
    architecture: :func:`deepnorm_constants`; decoder-only :math:`\alpha = (2M)^{1/4}`,
    :math:`\beta = (8M)^{-1/4}`, M blocks). The paper's pseudo-code draws
    ``xavier_normal_(w, gain=β)``; microsoft/torchscale divides its default init by the same
    constants (an encoder of an encoder-decoder by :math:`(N^4M)^{1/16}/1.15`, i.e. β with 1.15
    where the paper has 0.87 = 1/1.15; we keep the paper's). α is written to each declared
    skip's ``skip_scale``; the model should be post-LN (``model.norm=post``).
    """
    with torch.no_grad():
        return torch.nn.init.xavier_normal_(tensor, generator=generator)


def t_fixup_factor(part: str, layers: int) -> float:
    r"""T-Fixup's scale of a branch's signal path: :math:`0.67 N^{-1/4}` (encoder) or
    :math:`(9N)^{-1/4}` (decoder), N the stack's blocks."""
    return 0.67 * layers**-0.25 if part == "encoder" else (9 * layers) ** -0.25


def _t_fixup_plan(model, facts, params) -> list[Placement]:
    found = branches(model, "t_fixup")
    n = depth(found)
    c, embed = t_fixup_factor(params["part"], n), (9 * n) ** -0.25
    where = f"{params['part']}, {n} blocks"
    plan = [
        Placement(weight(x), "t_fixup", params, c, f"signal path: x {c:.4g} ({where})")
        for b in found
        for x in b.layers
    ]
    plan += [
        Placement(weight(x), "t_fixup", params, 2**-0.5, "q, k: xavier_uniform gain 1/sqrt(2)")
        for b in found
        for x in b.query_key
    ]
    tokens = getattr(model, "token_embedding", None)
    for name, m in model.named_modules():
        if isinstance(m, nn.Embedding):
            scale = embed if tokens in (None, name) else 1.0
            why = f"embedding N(0, 1/d) x {scale:.4g}" + (
                f" ((9N)^-1/4, {n} blocks)" if scale != 1 else ""
            )
            plan.append(
                Placement(weight(name), "normal", {"std": m.embedding_dim**-0.5}, scale, why)
            )
    head = model.get_submodule(facts.output_layer) if facts.output_layer else None
    if isinstance(head, nn.Linear):
        std = head.in_features**-0.5
        plan.append(
            Placement(weight(facts.output_layer), "normal", {"std": std}, 1.0, "head N(0, 1/d)")
        )
    return plan


@register_scheme(
    moments=lambda shape, part: (0.0, _xavier_std(shape)), family="uniform", residual=_t_fixup_plan
)
def t_fixup_(
    tensor: Tensor, part: Part = "decoder", *, generator: torch.Generator | None = None
) -> Tensor:
    r"""T-Fixup: Xavier-uniform weights, each branch's signal path scaled by
    :math:`(9N)^{-1/4}` (decoder; :math:`0.67 N^{-1/4}` encoder), token embeddings
    :math:`\mathcal{N}(0, d^{-1})` scaled by :math:`(9N)^{-1/4}`, no LayerNorm, no warm-up.

    `Improving Transformer Optimization Through Better Initialization` - Huang, X. S., Perez, F.,
    Ba, J. & Volkovs, M. (2020), as layer6ai-labs/T-Fixup draws it: every Linear
    ``xavier_uniform_``, q, k, v with gain :math:`1/\sqrt2` (fairseq's attention), then v, the
    output projection and both MLP layers times the factor (v also times √2: gain 1); token
    embeddings std :math:`d^{-1/2}` times :math:`(9N)^{-1/4}` (other embeddings, e.g. learned
    positions, unscaled); an untied head std :math:`d^{-1/2}`. A decoder-only GPT has no
    cross-attention, the third sublayer the decoder's constant counts: ``init.part=encoder``
    gives the two-sublayer constant. fairseq multiplies embeddings by √d in the forward
    (``model.scale_embedding=true``). Token embeddings: the model's ``token_embedding``, else
    every ``nn.Embedding``.
    """
    with torch.no_grad():
        return torch.nn.init.xavier_uniform_(tensor, generator=generator)
