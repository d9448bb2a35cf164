"""All copies in one step: stacked parameters, one batched forward/backward, one fused optimizer.

Every copy sees the same batch (the shared data order of the loop), or with
``trainer.data_order=per_seed`` a batch of its own; what differs per copy is its initial weights
(drawn by the init library, then stacked here), its dropout masks (one random stream per copy:
:class:`~initsweep.train.dropout.DropoutStreams`, :class:`~initsweep.train.draws.CopyDraws`) and
its buffers (batch norm's running statistics). The optimizer's update is per element, so
stacking the copies' tensors gives each copy exactly the update it would get alone: a copy in
the population follows the same numbers as that copy trained by
:class:`~initsweep.train.population.SequentialPopulation`, masks included.

On a multi-core CPU the copies are split into shards, one per core, each stepped by its own
single-threaded worker: small GEMMs and the serial mask RNG leave a second OpenMP thread idle
half the time, so single-thread workers are faster (``make bench``).
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import torch
from torch import Tensor, nn

from initsweep.train.dropout import DropoutStreams
from initsweep.train.functional import VmapStack
from initsweep.train.malloc import keep_freed_memory
from initsweep.train.optim import build_stacked_optimizer, named_scales, per_copy
from initsweep.train.stack_state import (
    check_state_fits,
    load_optimizer_slice,
    stacked_optimizer_state,
)
from initsweep.train.stacked import StackedMLP, mlp_unsupported


class _Shard:
    """A contiguous block of copies: their stack, optimizer and dropout streams."""

    def __init__(self, models, makers, loss, seeds, amp: bool, compile: bool, scales) -> None:
        device = next(models[0].parameters()).device
        self.drop = DropoutStreams(seeds, device)  # each copy's random stream
        mlp = mlp_unsupported(models[0]) is None
        self.engine = StackedMLP(models) if mlp else VmapStack(models, self.drop.generators)
        self.params = list(self.engine.params.values())
        self.buffers = list(getattr(self.engine, "buffers", {}).values())
        named = self.engine.params.items()  # μP: each copy's per-parameter multipliers
        per_param = [named_scales(named, sc) if sc else None for sc in scales]
        self.optimizer = build_stacked_optimizer(makers, self.params, per_param)
        self.device = device
        self.loss = loss
        self.amp = amp and self.device.type == "cuda"
        self.frozen: dict[int, dict] = {}  # copy -> its tensors at freeze time
        self._losses = torch.compile(self._forward_loss) if compile else self._forward_loss

    def _forward_loss(self, x: Tensor, y: Tensor, masks: list[Tensor], per_copy: bool) -> Tensor:
        return self.loss(self.engine.forward(x, masks, per_copy), y)

    def train_step(self, x: Tensor, y: Tensor, per_copy: bool = False) -> Tensor:
        """One update of the shard's copies (on ``x [B, ...]``, or with ``per_copy`` on their
        own batches ``x [m, B, ...]``); ``[m]`` losses, left on the device."""
        specs = self.engine.dropout_specs(x.shape[1] if per_copy else len(x))
        masks = [self.drop.mask(p, shape, self.params[0].dtype) for p, shape in specs]
        amp = torch.autocast("cuda", torch.bfloat16) if self.amp else nullcontext()
        with amp:
            losses = self._losses(x, y, masks, per_copy)
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # copy i's loss reaches only copy i's slices
        self.optimizer.step()
        if self.frozen:
            self._restore_frozen()
        losses = losses.detach()
        if self.frozen:  # a frozen copy reports no loss, as in the sequential population
            losses = losses.clone()
            losses[list(self.frozen)] = float("nan")
        return losses

    def _tensors(self, i: int) -> dict[tuple[int, str], Tensor]:
        """Copy i's slices of every parameter, stacked optimizer state tensor and buffer (batch
        norm's running statistics: a frozen copy's evaluation stays as it was)."""
        out = {}
        for k, p in enumerate(self.params):
            out[k, ""] = p.data[i]
            for key, v in self.optimizer.state.get(p, {}).items():
                if torch.is_tensor(v) and v.dim() > 0 and v.shape[0] == len(self.drop):
                    out[k, key] = v[i]
        for k, b in enumerate(self.buffers):
            out[-1 - k, "buffer"] = b[i]
        return out

    def freeze(self, i: int) -> None:
        self.frozen[i] = {k: t.clone() for k, t in self._tensors(i).items()}

    @torch.no_grad()
    def _restore_frozen(self) -> None:
        # the fused step updates every slice; put the frozen copies' values back
        for i, saved in self.frozen.items():
            now = self._tensors(i)
            for k, s in saved.items():
                now[k].copy_(s)


def default_shards(device: torch.device, copies: int) -> int:
    """One shard per CPU thread (at most one per copy); one on CUDA."""
    return 1 if device.type == "cuda" else max(1, min(torch.get_num_threads(), copies))


def shard_bounds(copies: int, shards: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each shard's contiguous block of copies, as even as can be."""
    cuts = [round(k * copies / shards) for k in range(shards + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


class VectorizedPopulation:
    """M copies of one model as stacked tensors, every copy advanced by one batched step.

    ``models`` are the initialised copies (one per seed, on the device); the MLP family is
    stacked by hand (:mod:`~initsweep.train.stacked`), any other buffer-free model through
    ``torch.func.vmap`` (:mod:`~initsweep.train.functional`). ``amp`` turns on bf16 autocast
    for the training step on CUDA; ``compile`` wraps the step's forward and loss in
    ``torch.compile``. ``make_optimizer`` is one partial for every copy, or one per copy
    (copies that differ in learning rate, momentum or weight decay: a group of jobs trained
    together, ``initsweep.job.group``); ``scales``, one per copy, its per-parameter multipliers
    of those numbers by parameter name (μP's learning rates), or None.
    """

    strategy = "vectorized"

    def __init__(
        self,
        models: list[nn.Module],
        make_optimizer,
        loss,
        dropout_seeds: list[int],
        *,
        shards: int | None = None,
        amp: bool = False,
        compile: bool = False,
        scales: list[dict | None] | None = None,
    ) -> None:
        self.template = copy.deepcopy(models[0])  # module(i) fills a copy of it
        makers = per_copy(make_optimizer, len(models))
        scales = scales or [None] * len(models)
        device = next(models[0].parameters()).device
        if device.type == "cpu":
            keep_freed_memory()
        # shards for the hand-written MLP stack only: a vmapped model's convolutions use the
        # threads themselves, and torch.compile builds one graph
        stacked = mlp_unsupported(models[0]) is None and not compile
        n = min(shards or default_shards(device, len(models)), len(models)) if stacked else 1
        self.bounds = shard_bounds(len(models), n)
        self.shards = [
            _Shard(models[a:b], makers[a:b], loss, dropout_seeds[a:b], amp, compile, scales[a:b])
            for a, b in self.bounds
        ]
        self.active = [True] * len(models)
        # single-thread workers, one per shard (threads release the GIL inside torch ops)
        self._pool = (
            ThreadPoolExecutor(n, initializer=torch.set_num_threads, initargs=(1,))
            if n > 1
            else None
        )

    def __len__(self) -> int:
        return len(self.active)

    @property
    def n_shards(self) -> int:
        return len(self.shards)

    def __del__(self) -> None:
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown(wait=False)

    def _locate(self, i: int) -> tuple[_Shard, int]:
        for shard, (a, b) in zip(self.shards, self.bounds):
            if a <= i < b:
                return shard, i - a
        raise IndexError(f"copy {i} of a population of {len(self)}")

    def train_step(self, x: Tensor, y: Tensor, per_copy: bool = False) -> Tensor:
        """One update of every active copy; returns the batch losses ``[M]`` (on the device).

        ``x [B, ...]``, ``y [B]`` is every copy's batch; with ``per_copy`` each copy has its own,
        ``x [M, B, ...]``, ``y [M, B]`` (``trainer.data_order=per_seed``).
        """
        parts = [(x[a:b], y[a:b]) if per_copy else (x, y) for a, b in self.bounds]
        if self._pool is None:
            return torch.cat([s.train_step(*p, per_copy) for s, p in zip(self.shards, parts)])
        futures = [
            self._pool.submit(s.train_step, *p, per_copy) for s, p in zip(self.shards, parts)
        ]
        return torch.cat([f.result() for f in futures])

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 4096) -> Tensor:
        """Outputs ``[M, N, K]`` of every copy in eval mode (dropout off)."""
        chunks = range(0, len(x), batch_size)
        per_shard = [
            torch.cat([s.engine.forward(x[j : j + batch_size]) for j in chunks], dim=1)
            for s in self.shards
        ]
        return torch.cat(per_shard)

    def parameters_finite(self) -> Tensor:
        """``[M]`` bool: does every parameter of copy i hold only finite values?"""
        return torch.cat(
            [
                torch.stack([p.detach().isfinite().flatten(1).all(1) for p in s.params]).all(0)
                for s in self.shards
            ]
        )

    def freeze(self, i: int) -> None:
        """Stop updating copy ``i``: its weights and optimizer state stay as they are now."""
        shard, j = self._locate(i)
        shard.freeze(j)
        self.active[i] = False

    def module(self, i: int) -> nn.Module:
        """Copy ``i`` as a plain ``nn.Module`` holding its current weights (a fresh copy)."""
        shard, j = self._locate(i)
        model = copy.deepcopy(self.template)
        model.load_state_dict(shard.engine.copy_values(j))
        return model

    def gradients(self, i: int) -> dict[str, Tensor]:
        """Copy ``i``'s slices of the stacked gradients of the last step (views, no copy)."""
        shard, j = self._locate(i)
        return shard.engine.copy_grads(j)

    def state_dict(self) -> dict:
        """Weights per copy (as plain ``state_dict``s), the optimizer state stacked over all
        copies (independent of the shard count), each copy's dropout RNG state, which train."""
        return {
            "strategy": self.strategy,
            "models": [self.module(i).state_dict() for i in range(len(self))],
            "optimizers": stacked_optimizer_state(
                [s.optimizer for s in self.shards], list(self.shards[0].engine.params)
            ),
            "rng": [g for s in self.shards for g in s.drop.get_state()],
            "active": list(self.active),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (from any device) into a population of the same shape."""
        check_state_fits(state, self)
        opt = state["optimizers"]
        for shard, (a, b) in zip(self.shards, self.bounds):
            for j in range(b - a):
                shard.engine.load_copy(j, state["models"][a + j])
            shard.drop.set_state([r.cpu() for r in state["rng"][a:b]])
            shard.frozen.clear()
            load_optimizer_slice(shard.optimizer, list(shard.engine.params), opt, a, b)
        self.active = list(state["active"])
        for i, alive in enumerate(self.active):
            if not alive:
                self.freeze(i)
