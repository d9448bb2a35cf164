"""Per-layer histograms of one model copy: its weights, its biases, its activations on a batch,
and (``tracker.gradients``) its gradients.

Every tracker uses these: the files tracker writes them to ``histograms.jsonl`` (the report draws
the weights at init against the theoretical density), the W&B tracker logs them as
``wandb.Histogram``, the TensorBoard tracker as raw histograms. Histograms are taken on the host,
in eval mode, without gradients, and draw no random numbers, so taking them never changes
training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

NUM_BINS = 64  # W&B's default bin count; enough to see the shape of U(+-a) or N(0, s^2)


@dataclass
class Histogram:
    """``counts`` over ``edges`` (``len(edges) == len(counts) + 1``) and the tensor's moments."""

    kind: str  # weight | bias | activation | gradient
    name: str  # parameter name (body.1.weight) or module name for activations (body.1)
    shape: list[int]
    counts: list[int]
    edges: list[float]
    mean: float
    std: float  # population std (ddof=0): the spread of the values actually drawn

    def record(self) -> dict:
        return dict(self.__dict__)

    @property
    def sum_squares(self) -> float:
        """The sum of the squared finite values, n (std^2 + mean^2): a gradient's norm squared."""
        return sum(self.counts) * (self.std**2 + self.mean**2)


def histogram(kind: str, name: str, values: Tensor, bins: int = NUM_BINS) -> Histogram:
    """Histogram of a tensor over its own range (a constant tensor gets one bin around its value)."""
    x = values.detach().double().cpu().numpy().ravel()
    finite = x[np.isfinite(x)]
    if finite.size == 0:  # a diverged copy: nothing to bin
        return Histogram(kind, name, list(values.shape), [], [], float("nan"), float("nan"))
    counts, edges = np.histogram(finite, bins=bins)
    return Histogram(
        kind,
        name,
        list(values.shape),
        counts.tolist(),
        edges.tolist(),
        float(finite.mean()),
        float(finite.std()),
    )


def _weighted_leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules that own a weight of >= 2 dims (Linear, Conv, ...): the layers whose output is a
    pre-activation."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(getattr(m, "weight", None), Tensor) and m.weight.dim() >= 2
    ]


@torch.no_grad()
def model_histograms(model: nn.Module, batch: Tensor | None = None) -> list[Histogram]:
    """Weights and biases of every layer, and each layer's output on ``batch`` (if given).

    Activations are the outputs of the weighted layers (pre-activations), the quantity whose std
    the signal-propagation profile follows through depth. The forward pass runs in eval mode
    (dropout off, batch norm on its running statistics) and the model's mode is restored after.
    """
    hists = [
        histogram("weight" if p.dim() >= 2 else "bias", name, p)
        for name, p in model.named_parameters()
    ]
    if batch is None:
        return hists
    outputs: dict[str, Tensor] = {}

    def keep(name: str, out) -> None:
        out = out[0] if isinstance(out, (tuple, list)) and out else out  # (output, state) layers
        if isinstance(out, Tensor):
            outputs[name] = out

    handles = [
        m.register_forward_hook(lambda _m, _i, out, name=name: keep(name, out))
        for name, m in _weighted_leaves(model)
    ]
    was_training = model.training
    try:
        model.eval()
        device = next(model.parameters()).device
        model(batch.to(device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    hists += [histogram("activation", name, out) for name, out in outputs.items()]
    return hists


class Histogrammer:
    """When to take histograms and of what batch, shared by the trackers of one job.

    Histograms are taken at init (epoch 0) and every ``every`` epochs after (``every = 0``: at
    init only). The histograms of the latest step are cached, so the trackers share one
    computation. With ``gradients``, each parameter's gradient joins them: the gradient of the
    last training batch before the histogram (as ``wandb.watch`` logs it), so none at step 0
    (``init.json`` holds the gradient norms at init).
    """

    def __init__(
        self, every: int = 1, probe: Tensor | None = None, gradients: bool = False
    ) -> None:
        self.every, self.probe, self.gradients = every, probe, gradients
        self._step: int | None = None
        self._cache: dict[int, list[Histogram]] = {}

    def due(self, epoch: int) -> bool:
        return epoch == 0 or (self.every > 0 and epoch % self.every == 0)

    def of(self, pop, i: int, step: int) -> list[Histogram]:
        """The histograms of copy ``i`` of ``pop`` at ``step``."""
        if step != self._step:
            self._step, self._cache = step, {}
        if i not in self._cache:
            hists = model_histograms(pop.module(i), self.probe)
            if self.gradients:  # read from the population only here: no sync per step
                hists += [histogram("gradient", n, g) for n, g in pop.gradients(i).items()]
            self._cache[i] = hists
        return self._cache[i]
