"""A population: M copies of one model that differ only in their initial weights (and dropout).

``SequentialPopulation`` steps the copies one after another. Every strategy offers the same calls:
``train_step`` (one update of every active copy on one shared batch), ``predict`` (outputs of
every copy, eval mode), ``parameters_finite``, ``freeze`` (stop updating a diverged copy) and
``module(i)`` (copy i as a plain ``nn.Module``, for diagnostics and histograms).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


class SequentialPopulation:
    """The copies as plain ``nn.Module``s with one optimizer each."""

    strategy = "sequential"

    def __init__(
        self,
        models: list[nn.Module],
        make_optimizer: Callable[..., torch.optim.Optimizer],
        loss: Callable[[Tensor, Tensor], Tensor],
        dropout_seeds: list[int],
    ) -> None:
        self.models = models
        self.optimizers = [make_optimizer(m.parameters()) for m in models]
        self.loss = loss
        self.active = [True] * len(models)
        # each copy draws its dropout masks from its own stream, saved between steps
        self._has_dropout = any(
            isinstance(m, nn.Dropout) and m.p > 0 for model in models for m in model.modules()
        )
        self._device = next(models[0].parameters()).device
        self._rng = [self._fresh_rng_state(s) for s in dropout_seeds]

    def __len__(self) -> int:
        return len(self.models)

    def _fresh_rng_state(self, seed: int) -> Tensor:
        if self._device.type == "cuda":
            g = torch.Generator(device=self._device).manual_seed(seed)
        else:
            g = torch.Generator().manual_seed(seed)
        return g.get_state()

    @contextmanager
    def _copy_rng(self, i: int) -> Iterator[None]:
        """Run with copy ``i``'s dropout stream as the global one, then restore the global."""
        if not self._has_dropout:
            yield
            return
        cuda = self._device.type == "cuda"
        with torch.random.fork_rng(devices=[self._device] if cuda else [], device_type="cuda"):
            set_state = torch.cuda.set_rng_state if cuda else torch.set_rng_state
            get_state = torch.cuda.get_rng_state if cuda else torch.get_rng_state
            set_state(self._rng[i])
            yield
            self._rng[i] = get_state()

    def train_step(self, x: Tensor, y: Tensor) -> Tensor:
        """One update of every active copy; returns the batch losses ``[M]`` (on the device)."""
        losses = []
        for i, (model, opt) in enumerate(zip(self.models, self.optimizers)):
            if not self.active[i]:
                losses.append(torch.full((), float("nan"), device=x.device))
                continue
            model.train()
            with self._copy_rng(i):
                loss = self.loss(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        return torch.stack(losses)

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 4096) -> Tensor:
        """Outputs ``[M, N, K]`` of every copy in eval mode (dropout off)."""
        outs = []
        for model in self.models:
            model.eval()
            outs.append(
                torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
            )
        return torch.stack(outs)

    def parameters_finite(self) -> Tensor:
        """``[M]`` bool: does every parameter of copy i hold only finite values?"""
        return torch.stack(
            [torch.stack([p.isfinite().all() for p in m.parameters()]).all() for m in self.models]
        )

    def module(self, i: int) -> nn.Module:
        """Copy ``i`` as a plain ``nn.Module`` (for diagnostics, histograms, checkpoints)."""
        return self.models[i]

    def freeze(self, i: int) -> None:
        """Stop updating copy ``i`` (it diverged); the others go on."""
        self.active[i] = False
