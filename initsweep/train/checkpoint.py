"""Checkpoint after an epoch and resume from it: a killed, preempted or requeued job continues.

``checkpoint.pt`` in the job's output directory holds everything the loop needs to go on as if
it had never stopped: the population's ``state_dict()`` (weights and buffers, optimizer state,
each copy's random stream, which copies still train), each copy's loop state (last metrics,
divergence step), the epoch and global step, and the resolved config. It is written after the
epochs ``trainer.checkpoint_every`` says (by default every 60 s, ``initsweep/train/every.py``)
and after the last. Data order depends only on seeds and the epoch
(``initsweep/train/order.py``), so a resumed job reproduces an uninterrupted one exactly (CPU).

The file holds only tensors and plain containers and is read with
``torch.load(weights_only=True)``: loading a checkpoint never runs pickled code.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from initsweep.errors import ConfigError, first_line
from initsweep.files import CHECKPOINT, SUMMARY, atomic_open
from initsweep.train.every import Schedule, parse_every
from initsweep.train.loop import CopyState

log = logging.getLogger("initsweep")


class Checkpoint:
    """Loop hook (:class:`~initsweep.train.loop.LoopHook`): after an epoch that ``every``
    (``trainer.checkpoint_every``: ``1`` each epoch, ``60s`` by time) makes due, and after the
    last of ``epochs``, write ``checkpoint.pt`` atomically (temp file, fsync, rename).

    A job killed at any moment leaves either the previous checkpoint or this one, never a
    half-written file.
    """

    def __init__(
        self,
        output_dir: str | Path,
        config: dict[str, Any],
        layout: dict | None = None,
        extra: Callable[[], dict] = dict,
        every: str | int = 1,
        epochs: int | None = None,
    ) -> None:
        self.path = Path(output_dir) / CHECKPOINT
        self.config, self.extra = config, extra
        self.layout = layout or {}  # how the copies were split (shards): a resume keeps it
        self.schedule = Schedule(parse_every(every), epochs)

    def on_epoch_end(self, epoch: int, step: int, pop, copies: list[CopyState]) -> None:
        if self.schedule.due(epoch):
            self.save(epoch, step, pop, copies)
            self.schedule.saved()

    def save(self, epoch: int, step: int, pop, copies: list[CopyState]) -> None:
        state = {
            "epoch": epoch,
            "step": step,
            "population": pop.state_dict(),
            "copies": [
                {"seed": c.seed, "final": dict(c.final), "diverged_step": c.diverged_step}
                for c in copies
            ],
            "config": self.config,
            "layout": self.layout,
            "extra": self.extra(),  # what else the caller needs back (a group's pruned jobs)
        }
        with atomic_open(self.path, "wb") as f:
            torch.save(state, f)


def load_checkpoint(output_dir: str | Path) -> dict[str, Any] | None:
    """The job's last checkpoint (tensors on the CPU), or ``None`` if it has none.

    A file that does not load (truncated, or holding objects the weights-only loader refuses:
    initsweep never writes those) is refused in one line naming it; it is never loaded unsafely.
    """
    path = Path(output_dir) / CHECKPOINT
    if not path.exists():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        why = "it holds objects other than tensors and plain containers: not initsweep's"
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        why = f"it is damaged or truncated ({first_line(e)[:120]})"
    else:
        if isinstance(ckpt, dict) and {"epoch", "step", "population", "copies"} <= set(ckpt):
            return ckpt
        why = "it is not an initsweep checkpoint"
    raise ConfigError(
        f"checkpoint {path} cannot be resumed from: {why}; delete it to train this job from "
        "the start"
    )


def previous_checkpoint(
    output_dir: str | Path, config: dict[str, Any], volatile: Sequence[str] = ()
) -> dict[str, Any] | None:
    """The job's checkpoint, if it has one; it must have been written by the same config,
    ``volatile`` keys aside."""
    ckpt = load_checkpoint(output_dir)
    if ckpt is not None:
        check_same_config(ckpt["config"], config, Path(output_dir) / CHECKPOINT, volatile)
    return ckpt


def resume(
    output_dir: str | Path,
    ckpt: dict[str, Any] | None,
    pop,
    copies,
    log_dirs: Sequence[str | Path] | None = None,
) -> tuple[int, int]:
    """Continue from ``ckpt`` (:func:`previous_checkpoint`): ``(start_epoch, step)`` for ``fit``.

    Without a checkpoint this is a fresh start, ``(1, 0)``. Either way the ``*.jsonl`` files of
    ``log_dirs`` (default: the job's own dir) lose the records the run will log again. Call it
    before the trackers open them.
    """
    for logs in log_dirs or [output_dir]:
        truncate_logs(logs, ckpt["step"] if ckpt else -1)
    if ckpt is None:
        return 1, 0
    start_epoch, step = restore(ckpt, pop, copies)
    log.info("resuming %s from epoch %d (step %d)", output_dir, start_epoch - 1, step)
    return start_epoch, step


def restore(ckpt: dict[str, Any], pop, copies: list[CopyState]) -> tuple[int, int]:
    """Load ``ckpt`` into ``pop`` and ``copies``; return ``(start_epoch, step)`` for ``fit``."""
    saved = [c["seed"] for c in ckpt["copies"]]
    if saved != [c.seed for c in copies]:
        raise ConfigError(f"seeds={[c.seed for c in copies]} but the checkpoint has seeds={saved}")
    pop.load_state_dict(ckpt["population"])
    for c, s in zip(copies, ckpt["copies"]):
        c.final = dict(s["final"])
        c.diverged_step = s["diverged_step"]
    return ckpt["epoch"] + 1, ckpt["step"]


def finished_objective(
    output_dir: str | Path, config: dict[str, Any], volatile: Sequence[str] = ()
) -> float | None:
    """The stored objective of a job that already finished here (``summary.json``), else ``None``.

    Re-running an interrupted multirun with the same ``hydra.sweep.dir`` thus runs only the jobs
    that had not finished.
    """
    path = Path(output_dir) / SUMMARY
    if not path.exists():
        return None
    try:
        summary = json.loads(path.read_text())
        saved, value = summary.get("config", {}), summary["objective"]["value"]
        value = math.nan if value is None else float(value)  # null: NaN (summary.json has no NaN)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        log.warning("%s is unreadable (%s): the job runs again", path, first_line(e)[:120])
        return None
    check_same_config(saved, config, path, volatile)
    return value


def check_same_config(
    saved: dict[str, Any], current: dict[str, Any], path: Path, volatile: Sequence[str] = ()
) -> None:
    """Refuse to resume (or reuse) a job written by a different config: one line, the first key.

    Keys in only one of the two (a schema that gained or lost a key between versions) and the
    ``volatile`` keys (and everything under them) are not compared.
    """
    a, b = _flatten(saved), _flatten(current)
    for key in sorted(set(a) & set(b)):
        if any(key == v or key.startswith(v + ".") for v in volatile):
            continue
        if a[key] != b[key]:
            raise ConfigError(
                f"{key}={b[key]!r} but {path} was written with {key}={a[key]!r}; "
                "use a new output dir or remove that file"
            )


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def truncate_logs(output_dir: str | Path, step: int) -> None:
    """Drop the records after ``step`` (and a torn last line) from every ``*.jsonl`` of the job.

    A resumed job logs again everything after its checkpoint's step, so this keeps each point
    exactly once; ``step=-1`` (a fresh start over a killed job's files) empties them. Every
    record carries a ``step``; each file is rewritten atomically.
    """
    for path in sorted(Path(output_dir).glob("*.jsonl")):
        kept = []
        with open(path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by the kill
                if isinstance(record, dict) and record.get("step", math.inf) <= step:
                    kept.append(line if line.endswith("\n") else line + "\n")
        with atomic_open(path) as f:
            f.writelines(kept)
