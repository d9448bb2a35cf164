"""A decoder-only transformer in nanoGPT's shape (karpathy/nanoGPT ``model.py``), for token tasks.

Token and position embeddings, ``depth`` blocks of causal self-attention and an MLP on
residual branches, a final norm (pre-LN), and a head tied to the token embedding or its own.
The attention is written out (nanoGPT's "slow attention" path) with its causal mask made in
``forward``: no buffer, so copies of the model stack (``torch.func.vmap``) like any other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from initsweep.errors import invalid
from initsweep.init.residual import ResidualBranch

NORMS = ("pre", "post", "none")
_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with separate ``q``, ``k``, ``v`` and output ``proj``
    (nanoGPT fuses q, k, v into ``c_attn``; apart they can be initialised by role)."""

    def __init__(self, width: int, heads: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.proj = (nn.Linear(width, width, bias=bias) for _ in range(4))
        self.attn_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        b, t, c = x.shape
        # (B, nh, T, hs)
        q, k, v = (
            m(x).view(b, t, self.heads, c // self.heads).transpose(1, 2)
            for m in (self.q, self.k, self.v)
        )
        att = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        att = self.attn_drop(att.masked_fill(~causal, float("-inf")).softmax(-1))
        return self.proj((att @ v).transpose(1, 2).reshape(b, t, c))


class FeedForward(nn.Module):
    """``fc`` (width → hidden) → activation → ``proj`` (hidden → width)."""

    def __init__(self, width: int, hidden: int, activation: str, bias: bool) -> None:
        super().__init__()
        self.fc = nn.Linear(width, hidden, bias=bias)
        self.act = _ACTIVATIONS[activation]()
        self.proj = nn.Linear(hidden, width, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.act(self.fc(x)))


class Block(nn.Module):
    """Two residual branches, attention then MLP: ``x ← s·x + g·f(ln(x))`` (pre-LN),
    ``x ← ln(s·x + g·f(x))`` (post-LN, Vaswani et al. 2017) or ``x ← s·x + g·f(x)`` (none).

    ``skip_scale`` s is 1 unless a scheme sets it (DeepNorm's α); ``gain`` g, one scalar shared
    by both branches as in ReZero's reference code (majumderb/rezero ``resweight``), exists with
    ``branch_gain``.
    """

    def __init__(self, width, heads, hidden, norm, activation, dropout, bias, branch_gain) -> None:
        super().__init__()
        self.norm = norm
        self.ln1 = nn.LayerNorm(width, bias=bias) if norm != "none" else None
        self.attn = CausalSelfAttention(width, heads, dropout, bias)
        self.ln2 = nn.LayerNorm(width, bias=bias) if norm != "none" else None
        self.mlp = FeedForward(width, hidden, activation, bias)
        self.drop = nn.Dropout(dropout)
        self.gain = nn.Parameter(torch.ones(1)) if branch_gain else None
        self.skip_scale = 1.0

    def _residual(self, x: Tensor, branch: nn.Module, ln: nn.Module | None) -> Tensor:
        f = self.drop(branch(ln(x) if self.norm == "pre" else x))
        y = self.skip_scale * x + (f if self.gain is None else self.gain * f)
        return ln(y) if self.norm == "post" else y

    def forward(self, x: Tensor) -> Tensor:
        return self._residual(self._residual(x, self.attn, self.ln1), self.mlp, self.ln2)


class GPT(nn.Module):
    """nanoGPT's decoder: ``wte`` + ``wpe`` → ``blocks`` → ``ln_f`` (pre-LN only) → head.

    Inputs are token ids ``[N, T]`` (T ≤ the data's block size), outputs logits ``[N, T, V]``;
    the vocabulary V is the task's outputs (a token task's inputs and targets share it). The
    head is ``wte`` itself (``tied``, nanoGPT's weight tying: logits = h·wteᵀ, no bias) or a
    Linear ``head`` (without a bias, as nanoGPT's ``lm_head``, unless ``head_bias``: then
    ``bias=prior`` starts it at the unigram distribution). ``scale_embedding`` multiplies token embeddings by √width (Vaswani et al.
    2017 §3.4; fairseq's default, which T-Fixup's reference code runs with). ``head_dim`` fixes
    the size of a head (then ``heads`` = width / head_dim): widening adds heads, and the
    attention's 1/√head_dim stays a constant, as μP asks of it (Yang et al. 2022 use 1/d_head
    where the head size grows instead).
    """

    activation = "gelu"
    width_key = "width"  # what init=mup and the coordinate check scale
    token_embedding = "wte"  # T-Fixup scales it by depth; wpe (positions) is not

    def __init__(
        self,
        input_shape: Sequence[int],
        out_features: int,
        depth: int = 4,
        width: int = 128,
        heads: int = 4,
        mlp_ratio: int = 4,
        norm: str = "pre",
        tied: bool = True,
        activation: str = "gelu",
        dropout: float = 0.0,
        bias: bool = True,
        branch_gain: bool = False,
        scale_embedding: bool = False,
        head_bias: bool = False,
        head_dim: int | None = None,
    ) -> None:
        super().__init__()
        if len(input_shape) != 1:
            raise invalid(
                "model", "gpt", f"needs token ids [T], the dataset gives {list(input_shape)}"
            )
        if norm not in NORMS:
            raise invalid("model.norm", norm, f"use one of {', '.join(NORMS)}")
        if activation not in _ACTIVATIONS:
            raise invalid("model.activation", activation, f"use one of {', '.join(_ACTIVATIONS)}")
        for key, value in (
            ("depth", depth),
            ("width", width),
            ("heads", heads),
            ("mlp_ratio", mlp_ratio),
        ):
            if not (isinstance(value, int) and value >= 1):
                raise invalid(f"model.{key}", value, "must be an integer >= 1")
        if tied and head_bias:
            raise invalid("model.head_bias", head_bias, "needs model.tied=false (wte has no bias)")
        if head_dim is not None:  # μP's width scaling: more heads of a fixed size
            if not (isinstance(head_dim, int) and head_dim >= 1 and width % head_dim == 0):
                raise invalid("model.head_dim", head_dim, f"must divide model.width={width}")
            heads = width // head_dim
        if width % heads:
            raise invalid("model.heads", heads, f"must divide model.width={width}")
        self.activation = activation
        self.tied = tied
        self.output_layer = "wte" if tied else "head"
        self.embed_scale = math.sqrt(width) if scale_embedding else 1.0
        self.wte = nn.Embedding(out_features, width)
        self.wpe = nn.Embedding(input_shape[0], width)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(width, heads, mlp_ratio * width, norm, activation, dropout, bias, branch_gain)
            for _ in range(depth)
        )
        # post-LN ends on a norm already; no norm, no final norm (T-Fixup, ReZero)
        self.ln_f = nn.LayerNorm(width, bias=bias) if norm == "pre" else None
        self.head = None if tied else nn.Linear(width, out_features, bias=head_bias)

    def residual_branches(self) -> list[ResidualBranch]:
        """Two per block: attention (v, then proj; q and k aside) and the MLP (fc, proj)."""
        out = []
        for i, block in enumerate(self.blocks):
            at = f"blocks.{i}"
            gain = f"{at}.gain" if block.gain is not None else None
            attn, mlp = f"{at}.attn", f"{at}.mlp"
            out.append(
                ResidualBranch(
                    i, (f"{attn}.v", f"{attn}.proj"), gain, skip=at,
                    query_key=(f"{attn}.q", f"{attn}.k"),
                )
            )  # fmt: skip
            out.append(ResidualBranch(i, (f"{mlp}.fc", f"{mlp}.proj"), gain, skip=at))
        return out

    def forward(self, idx: Tensor) -> Tensor:
        pos = torch.arange(idx.shape[-1], device=idx.device)
        x = self.drop(self.wte(idx) * self.embed_scale + self.wpe(pos))
        for block in self.blocks:
            x = block(x)
        if self.ln_f is not None:
            x = self.ln_f(x)
        return F.linear(x, self.wte.weight) if self.tied else self.head(x)
