"""The jobs of one population, and the parts that keep each job's own files apart.

The copies of different jobs differ only in what the init library does before training
(scheme, gain, scale, rules, bias rule) and in a few optimizer numbers, as the seeds of one job
differ in their draws. :func:`stack_key` says which jobs may train together (everything else
equal: model, data and its order, batch size, epochs, loss, optimizer class, device, strategy);
:func:`group_jobs` splits a batch into groups. While a group trains (:mod:`initsweep.job.runner`;
a job alone is a group of one), :class:`GroupTracker` hands each job its own records, so every
job writes exactly the files it writes alone, and :class:`GroupHooks` stops a pruned trial's
copies only. A group of several jobs checkpoints under the sweep dir (``.population/<group>/``),
so re-running the same command resumes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from initsweep.config import PER_JOB  # the keys the jobs of one population may differ in
from initsweep.job.spec import JobSpec
from initsweep.search import Pruned
from initsweep.track import Trackers
from initsweep.train.checkpoint import Checkpoint
from initsweep.train.loop import CopyState

log = logging.getLogger("initsweep")

GROUPS_DIR = ".population"  # under the sweep dir: one checkpoint folder per group


def stack_key(spec: JobSpec) -> str:
    """What must be equal for jobs to train as one population: the config without
    :data:`PER_JOB` keys (two jobs with the same key can share every step)."""
    config = json.loads(json.dumps(spec.config, default=str))
    for key in PER_JOB:
        *parents, leaf = key.split(".")
        node = config
        for p in parents:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    return json.dumps(config, sort_keys=True)


def group_jobs(specs: list[JobSpec], max_copies: int | None = None) -> list[list[int]]:
    """Indices of ``specs`` by :func:`stack_key`, in first-seen order; a group holds at most
    ``max_copies`` copies (seeds) when given."""
    groups: dict[str, list[list[int]]] = {}
    for i, spec in enumerate(specs):
        chunks = groups.setdefault(stack_key(spec), [[]])
        copies = sum(len(specs[j].seeds) for j in chunks[-1])
        if chunks[-1] and max_copies and copies + len(spec.seeds) > max_copies:
            chunks.append([])
        chunks[-1].append(i)
    return [chunk for chunks in groups.values() for chunk in chunks]


def spans_of(specs: list[JobSpec]) -> list[tuple[int, int]]:
    """Each job's copies ``[start, stop)`` in the population, job after job."""
    spans: list[tuple[int, int]] = []
    for spec in specs:
        start = spans[-1][1] if spans else 0
        spans.append((start, start + len(spec.seeds)))
    return spans


def checkpoint_of(specs: list[JobSpec]) -> tuple[Path, dict, list[str]]:
    """Where a group checkpoints, the config it checkpoints with, and that config's volatile keys:
    a job alone in its own dir with its own config (so it resumes as it always did); several
    jobs in a folder under the sweep dir named after their dirs."""
    if len(specs) == 1:
        return specs[0].output_dir, specs[0].config, list(specs[0].volatile)
    jobs = "|".join(str(s.output_dir.resolve()) for s in specs)
    name = hashlib.sha1(jobs.encode()).hexdigest()[:12]
    where = Path(specs[0].sweep_dir or specs[0].output_dir.parent) / GROUPS_DIR / name
    config = {"jobs": {str(j): spec.config for j, spec in enumerate(specs)}}
    volatile = [f"jobs.{j}.{v}" for j, spec in enumerate(specs) for v in spec.volatile]
    return where, config, volatile


class PopulationSlice:
    """Copies ``[start, stop)`` of a population, seen as a population of their own (what one
    job's trackers and pruning read: ``module(i)``, ``gradients(i)``, ``predict``)."""

    def __init__(self, pop, start: int, stop: int) -> None:
        self.pop, self.start, self.stop = pop, start, stop
        self.strategy = pop.strategy

    def __len__(self) -> int:
        return self.stop - self.start

    def module(self, i: int):
        return self.pop.module(self.start + i)

    def gradients(self, i: int):
        return self.pop.gradients(self.start + i)

    def predict(self, x, batch_size: int = 4096):
        return self.pop.predict(x, batch_size)[self.start : self.stop]


class GroupTracker:
    """The one :class:`~initsweep.track.base.Tracker` of a group: each call to the job it
    belongs to (its own :class:`~initsweep.track.Trackers`).

    What belongs to copies is split by copy: ``log_init``'s per-seed rows and ``log_model``'s
    population (each job sees the slice of its copies). What belongs to a job names it: a metrics
    record and a summary carry ``job`` (:meth:`CopyState.record`), dropped before they are
    written. A job that stopped (a pruned trial, every seed diverged) receives no more records
    but the held-out split's one look at the end, as alone; its summary still comes.
    """

    def __init__(self, trackers: list[Trackers], slices: list[PopulationSlice]) -> None:
        self.trackers, self.slices = trackers, slices
        self.closed: set[int] = set()

    def log_init(self, init: dict) -> None:
        for tracker, view in zip(self.trackers, self.slices):
            tracker.log_init({**init, "seeds": init["seeds"][view.start : view.stop]})

    def log_metrics(self, records: list[dict]) -> None:
        by_job: dict[int, list[dict]] = {}
        for r in records:
            job = r.pop("job")
            by_job.setdefault(job, []).append(r)
        for job, rs in by_job.items():
            if job not in self.closed or all(_held_out(r) for r in rs):
                self.trackers[job].log_metrics(rs)

    def log_model(self, step: int, epoch: int, pop) -> None:
        for job, (tracker, view) in enumerate(zip(self.trackers, self.slices)):
            if job not in self.closed:
                tracker.log_model(step, epoch, view)

    def log_summary(self, summary: dict) -> None:
        summary = dict(summary)
        self.trackers[summary.pop("job")].log_summary(summary)

    def finish(self, status: str = "finished") -> None:
        Trackers(self.trackers).finish(status)  # every job's, also when one of them raises


def _held_out(record: dict) -> bool:
    return any(k.startswith("test/") for k in record)


class GroupHooks:
    """After each epoch: each live job's pruning hook on its own copies (a pruned job's copies
    stop: frozen, no more records), then the group's checkpoint, which remembers them."""

    def __init__(
        self, where: Path, config: dict, layout: dict, jobs: list[list], spans, tracker, trainer
    ) -> None:
        self.jobs, self.spans, self.tracker = jobs, spans, tracker
        self.pruned: dict[int, Pruned] = {}
        every, epochs = trainer.checkpoint_every, trainer.epochs
        self.checkpoint = Checkpoint(where, config, layout, self._state, every, epochs)

    def _state(self) -> dict:
        return {"pruned": {str(j): p.epoch for j, p in self.pruned.items()}}

    def stop(self, job: int, pruned: Pruned, pop, copies: list[CopyState]) -> None:
        self.pruned[job] = pruned
        self.tracker.closed.add(job)
        for i in range(*self.spans[job]):
            copies[i].stopped = True
            pop.freeze(i)

    def restore(self, ckpt: dict | None, pop, copies: list[CopyState]) -> None:
        """A resumed group: the jobs pruned or diverged before the stop stay stopped."""
        for j, epoch in ((ckpt or {}).get("extra") or {}).get("pruned", {}).items():
            self.stop(int(j), Pruned(-1, epoch, float("nan")), pop, copies)
        self.stop_diverged(copies)

    def stop_diverged(self, copies: list[CopyState]) -> None:
        """A job whose seeds all diverged stops (no more records), as the loop stops when every
        copy did."""
        for job, (a, b) in enumerate(self.spans):
            if job not in self.tracker.closed and all(
                c.diverged_step is not None for c in copies[a:b]
            ):
                self.tracker.closed.add(job)
                for c in copies[a:b]:
                    c.stopped = True

    def on_epoch_end(self, epoch: int, step: int, pop, copies: list[CopyState]) -> None:
        for job, hooks in enumerate(self.jobs):
            a, b = self.spans[job]
            for hook in hooks if job not in self.pruned else ():
                try:
                    hook.on_epoch_end(epoch, step, self.tracker.slices[job], copies[a:b])
                except Pruned as p:
                    log.info("%s", p)
                    self.stop(job, p, pop, copies)
        self.stop_diverged(copies)
        self.checkpoint.on_epoch_end(epoch, step, pop, copies)
