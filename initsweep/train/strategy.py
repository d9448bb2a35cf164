"""Which population trains a model's copies: stacked where it can and where that is faster.

The MLP family has a hand-written stack (``initsweep/train/stacked.py``), faster than the copies
one at a time on any device. Any other model stacks through ``torch.func.vmap``
(``initsweep/train/functional.py``) if a trial step shows vmap can batch it, buffers (batch-norm
running statistics) and random draws included. ``auto`` does that on CUDA; on a CPU it follows
what ``make bench`` measured (:data:`CPU_STACK_SPEEDUP`), because there a conv net's own
convolutions already fill the cores and stacking its copies measured slower.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from initsweep.errors import first_line
from initsweep.train.functional import VmapStack
from initsweep.train.stacked import mlp_unsupported

# scripts/bench.py's "stacked against sequential" table on the 2-core CPU: samples/s of the vmap
# stack over the copies in turn, per model and M (docs/explanation/performance.md). auto stacks a
# vmap model on a CPU where its row says the stack is faster. Measured with --clock cpu (one
# thread's CPU seconds: the machine was shared; docs/assets/performance/bench.json); make bench
# on a quiet machine prints DISAGREES where its wall-time table would pick otherwise.
CPU_STACK_SPEEDUP: dict[str, dict[int, float]] = {
    "cnn": {1: 0.92, 4: 0.91, 10: 0.91},
    "resnet18": {1: 0.98, 4: 0.89, 10: 0.86},
    "efficientnet_b0": {1: 0.86, 4: 0.95, 10: 0.97},
}


def model_key(model: nn.Module) -> str:
    """The name a model's row has in :data:`CPU_STACK_SPEEDUP` (a torchvision net's arch)."""
    return getattr(model, "arch", None) or type(model).__name__.lower()


def cpu_stack_speedup(model: nn.Module, copies: int) -> tuple[int, float] | None:
    """``(M, speed-up)`` of the measured row nearest below ``copies``; ``None``: not measured."""
    row = CPU_STACK_SPEEDUP.get(model_key(model))
    if row is None:
        return None
    m = max((k for k in row if k <= copies), default=min(row))
    return m, row[m]


def vectorize_unsupported(
    model: nn.Module,
    device: torch.device,
    explicit: bool,
    sample: Tensor | None = None,
    copies: int = 2,
) -> str | None:
    """Why the ``copies`` of ``model`` are not trained as one stack (``None``: they are).

    ``explicit`` (``trainer.strategy=vectorized``) skips the CPU measurement; ``sample``, a
    couple of inputs on ``device``, tries a stacked training step.
    """
    name = type(model).__name__
    rnn = next((m for m in model.modules() if isinstance(m, nn.RNNBase)), None)
    if rnn is not None:  # torch.func.vmap has no batching rule for aten::lstm/gru/rnn
        return f"{name} holds an nn.{type(rnn).__name__}, which vmap cannot batch"
    if mlp_unsupported(model) is None:
        return None
    if not explicit and device.type != "cuda":
        measured = cpu_stack_speedup(model, copies)
        if measured is None:
            return (
                f"on a CPU, {name} copies train one at a time: make bench measured stacking "
                "slower for the conv nets it times, and it has not timed this model"
            )
        m, speed = measured
        if speed <= 1:
            return (
                f"on a CPU, {model_key(model)} copies train faster one at a time than stacked "
                f"(make bench: the stack ran at {speed:.2f}x at M={m})"
            )
    return None if sample is None else vmap_problem(model, sample)


def vmap_problem(model: nn.Module, sample: Tensor) -> str | None:
    """Why ``torch.func.vmap`` cannot stack copies of ``model``, or ``None``: a trial training
    step (forward with random draws, backward) and an eval forward of two copies."""
    try:
        generators = [torch.Generator(device=sample.device).manual_seed(k) for k in (0, 1)]
        stack = VmapStack([model, model], generators)
        x = sample[:2]
        stack.forward(x, masks=[]).float().sum().backward()
        with torch.no_grad():
            stack.forward(x)
    except Exception as e:  # no batching rule for some op, a draw the stack cannot split
        return f"vmap cannot batch {type(model).__name__} ({type(e).__name__}: {first_line(e)})"
    return None
