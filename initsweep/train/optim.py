"""Build the configured optimizer with its fastest kernel: fused, else foreach, else plain."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable

import torch
from torch import Tensor


def build_optimizer(
    make_optimizer: Callable[..., torch.optim.Optimizer], params: Iterable[Tensor]
) -> torch.optim.Optimizer:
    """``make_optimizer(params)`` (a Hydra partial), asking for ``fused=True`` where it can.

    SGD, Adam and AdamW have fused CPU and CUDA kernels that do the same arithmetic per element
    as the single-tensor loop, in one pass over all tensors. A ``fused``/``foreach`` set in the
    config is kept as given.
    """
    params = list(params)
    given = make_optimizer.keywords if isinstance(make_optimizer, functools.partial) else {}
    cls = getattr(make_optimizer, "func", make_optimizer)
    accepted = inspect.signature(cls).parameters if inspect.isclass(cls) else {}
    if "fused" in given or "foreach" in given:
        return make_optimizer(params)
    for option in ("fused", "foreach"):
        if option in accepted:
            try:
                return make_optimizer(params, **{option: True})
            except (RuntimeError, ValueError, TypeError):
                continue  # e.g. no fused kernel for this device or dtype
    return make_optimizer(params)
