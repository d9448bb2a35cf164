"""The training loop: every copy of the population steps together on the epoch's batches.

One readable loop (nanoGPT style): evaluate at step 0 (the loss at init), then epochs of
batches (one order shared by every copy, or one per seed: ``initsweep/train/order.py``), then
the held-out test split once (when the bundle has one). The hot path keeps losses on the device;
the host reads them once per log interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor
from tqdm.auto import tqdm

from initsweep.data import DataBundle
from initsweep.train.metrics import evaluate
from initsweep.train.order import epoch_batches, epoch_orders


@dataclass
class LoopConfig:
    epochs: int
    batch_size: int
    data_seed: int
    log_every: int  # steps between train/loss points (each one host sync)
    loss: str
    huber_delta: float = 1.0
    eval_batch_size: int = 4096
    progress: bool = True
    data_order: str = "shared"  # or per_seed: each copy its own shuffle and batches


@dataclass
class CopyState:
    """What the loop knows of one copy: its seed, last metrics, and when it diverged."""

    seed: int
    final: dict[str, float] = field(default_factory=dict)
    diverged_step: int | None = None
    job: int | None = None  # whose copy, when several jobs train as one population
    stopped: bool = False  # its job stopped (a pruned trial of a group): frozen, not diverged

    def record(self, step: int, epoch: int, metrics: dict) -> dict:
        """A ``metrics.jsonl`` record of this copy (with ``job`` for a group's routing)."""
        head = {"seed": self.seed, "step": step, "epoch": epoch}
        return (
            {**head, "job": self.job, **metrics} if self.job is not None else {**head, **metrics}
        )


class LoopHook(Protocol):
    """Something :func:`fit` runs after each epoch's evaluation (the checkpoint, pruning).

    ``copies`` hold each seed's metrics of that epoch; a hook may raise to stop the run
    (``initsweep.search.Pruned``): the test split is then evaluated at that epoch and the caller
    writes the summary.
    """

    def on_epoch_end(self, epoch: int, step: int, pop, copies: list[CopyState]) -> None: ...


def eval_split(pop, x, y, bundle: DataBundle, cfg: LoopConfig) -> list[dict[str, float]]:
    """Per-copy metrics on one split, read to the host once."""
    if isinstance(x, Tensor):
        outputs = pop.predict(x, cfg.eval_batch_size)
    else:  # streamed inputs: predict chunk by chunk, the outputs [M, N, K] fit in memory
        chunks = x.batches(cfg.eval_batch_size, y.device)
        outputs = torch.cat([pop.predict(c, cfg.eval_batch_size) for c in chunks], dim=1)
    per_copy = [evaluate(o, y, bundle.task, cfg.loss, cfg.huber_delta) for o in outputs]
    keys = list(per_copy[0])
    values = torch.stack([torch.stack([m[k].double() for k in keys]) for m in per_copy]).tolist()
    return [dict(zip(keys, row)) for row in values]


def fit(
    pop,
    bundle: DataBundle,
    cfg: LoopConfig,
    tracker,
    copies: list[CopyState],
    hooks: Sequence[LoopHook] = (),
    start_epoch: int = 1,
    step: int = 0,
    at_init: list[dict[str, float]] | None = None,
) -> list[CopyState]:
    """Train every copy of ``pop`` for ``cfg.epochs``; log through ``tracker``; return the copies.

    ``tracker.log_model(step, epoch, pop)`` runs at step 0 and after each epoch (histograms);
    each hook's ``on_epoch_end(epoch, step, pop, copies)`` runs after each epoch's evaluation
    (checkpoints, pruning). ``start_epoch``/``step`` resume a job from a checkpoint. At the end
    of the epoch in which the last copy diverged it stops, as nothing trains any more; each copy
    holds its last metrics and divergence step (the summary then says ``diverged``). The test
    split (``bundle.x_test``) is evaluated once, after the last epoch or the epoch a hook stopped
    the run after: ``test/*`` enters each live copy's final metrics, never a hook's decision.
    ``at_init``: each copy's train-split metrics at step 0 when the caller measured them already
    (the loss at init of the step-0 diagnostics), so they are not evaluated twice.
    """
    n = len(bundle.x_train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    held_out = bundle.x_test is not None

    def log_eval(epoch: int, splits: tuple[str, ...]) -> None:
        data = {
            "train": (bundle.x_train, bundle.y_train),
            "val": (bundle.x_val, bundle.y_val),
            "test": (bundle.x_test, bundle.y_test),
        }
        rows = [{} for _ in copies]
        for split in splits:
            measured = at_init if (split, epoch) == ("train", 0) and at_init else None
            for row, metrics in zip(rows, measured or eval_split(pop, *data[split], bundle, cfg)):
                row.update({f"{split}/{k}": v for k, v in metrics.items()})
        # a stopped copy (a group's pruned job) is frozen at the epoch it stopped after: its
        # held-out look comes with the others', at the end
        look = splits == ("test",)
        for c, row in zip(copies, rows):
            if epoch > 0 and c.diverged_step is None and (look or not c.stopped):
                c.final.update(row)
        tracker.log_metrics([c.record(step, epoch, row) for c, row in zip(copies, rows)])

    # --- step 0: the loss at init, before any update
    if start_epoch == 1:
        log_eval(0, ("train", "val"))
        tracker.log_model(step, 0, pop)
    bar = tqdm(
        total=cfg.epochs * steps_per_epoch,
        desc=f"train {len(copies)} seeds",
        unit="step",
        disable=not cfg.progress,
    )
    bar.update((start_epoch - 1) * steps_per_epoch)
    device = bundle.y_train.device
    seeds, per_copy = [c.seed for c in copies], cfg.data_order == "per_seed"
    epoch = start_epoch - 1
    for epoch in range(start_epoch, cfg.epochs + 1):
        order = epoch_orders(n, cfg.data_order, cfg.data_seed, seeds, epoch).to(device)
        loss_sum = torch.zeros(len(copies), device=device)
        since_log = 0
        for j, (x, y) in enumerate(epoch_batches(bundle, order, cfg.batch_size)):
            loss_sum += pop.train_step(x, y, per_copy)
            step += 1
            since_log += 1
            bar.update()
            if step % cfg.log_every == 0 or j == steps_per_epoch - 1:
                # --- host sync: once per log interval
                log_train(pop, copies, (loss_sum / since_log).tolist(), step, epoch, tracker, bar)
                loss_sum.zero_()
                since_log = 0
        log_eval(epoch, ("val",))
        tracker.log_model(step, epoch, pop)
        try:
            for hook in hooks:
                hook.on_epoch_end(epoch, step, pop, copies)
        except Exception:  # stopped (pruned) here: the held-out split still gets its one look
            if held_out:
                log_eval(epoch, ("test",))
            raise
        if all(c.diverged_step is not None or c.stopped for c in copies):  # nothing trains
            if all(c.diverged_step is not None for c in copies):  # else: pruned, said so
                tqdm.write(f"every seed diverged by epoch {epoch} (step {step}): training stops")
            break
    bar.close()
    if held_out:
        log_eval(epoch, ("test",))
    return copies


def log_train(pop, copies, losses: list[float], step: int, epoch: int, tracker, bar) -> None:
    """Log the interval's mean train loss per copy; freeze copies whose loss or weights blew up."""
    finite = pop.parameters_finite().tolist()
    records = []
    for i, (c, loss) in enumerate(zip(copies, losses)):
        if c.diverged_step is not None or c.stopped:
            continue
        if not (math.isfinite(loss) and finite[i]):
            c.diverged_step = step
            pop.freeze(i)
            tqdm.write(
                f"seed {c.seed} diverged at step {step} (train loss {loss}); frozen, the others go on"
            )
        c.final["train/loss"] = loss
        records.append(c.record(step, epoch, {"train/loss": loss}))
    tracker.log_metrics(records)
    live = [loss for c, loss in zip(copies, losses) if c.diverged_step is None and not c.stopped]
    if live:
        bar.set_postfix(loss=f"{sum(live) / len(live):.4f}")
