"""Several jobs of a sweep trained as one population: every arm that shares an architecture.

The copies of different arms differ only in what the init library does before training
(scheme, gain, scale, rules, bias rule) and in a few optimizer numbers — as the seeds of one job
differ in their draws. :func:`stack_key` says which jobs may train together (everything else
equal: model, data and its order, batch size, epochs, loss, optimizer class, device, strategy);
:func:`run_group` trains them as one population and writes each job's own files, exactly the
files the job writes alone (``metrics.jsonl``, ``init.json``, ``histograms.jsonl``,
``summary.json``, its trackers' runs), and returns each job's objective. A search trial that is
pruned freezes its own copies only. The group checkpoints every epoch under the sweep dir
(``.population/<group>/``), so re-running the same command resumes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from contextlib import ExitStack
from pathlib import Path

import torch

from initsweep.diagnostics import step0_report
from initsweep.errors import ConfigError
from initsweep.files import dir_lock
from initsweep.init import param_generator
from initsweep.job.build import (
    build,
    build_data,
    build_models,
    check_writable,
    loop_config,
    make_trackers,
    resolve_device,
    set_determinism,
)
from initsweep.job.spec import JobSpec
from initsweep.job.task import how_it_ran, open_job_trial, pruning_hooks, run_job, summarize_job
from initsweep.search import Pruned
from initsweep.track import Trackers
from initsweep.train.checkpoint import (
    Checkpoint,
    finished_objective,
    previous_checkpoint,
    resume,
)
from initsweep.train.loop import CopyState, fit
from initsweep.train.metrics import loss_fn
from initsweep.train.optim import PER_COPY
from initsweep.train.population import make_population

log = logging.getLogger("initsweep")

# config keys that may differ between the jobs of one population
PER_JOB = (
    "seeds", "init", "bias", "name", "objective", "tracker", "paths", "search",
    "trainer.on_diverge", "trainer.diverge_penalty", "trainer.progress",
    *(f"optimizer.{k}" for k in PER_COPY),
)  # fmt: skip
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


class PopulationSlice:
    """Copies ``[start, stop)`` of a population, seen as a population of their own (what one
    job's trackers and diagnostics read: ``module(i)``, ``predict``)."""

    def __init__(self, pop, start: int, stop: int, cache: dict) -> None:
        self.pop, self.start, self.stop, self._cache = pop, start, stop, cache
        self.strategy = pop.strategy

    def __len__(self) -> int:
        return self.stop - self.start

    def module(self, i: int):
        return self.pop.module(self.start + i)

    def gradients(self, i: int):
        return self.pop.gradients(self.start + i)

    def predict(self, x, batch_size: int = 4096):
        # every job's step-0 evaluation of the same split: predict it once for all copies
        key = (id(x), batch_size)
        if key not in self._cache:
            self._cache.clear()
            self._cache[key] = self.pop.predict(x, batch_size)
        return self._cache[key][self.start : self.stop]


class GroupTracker:
    """The loop's one tracker for a group: each record and call to the job it belongs to.

    A record carries its copy's ``job`` (:meth:`CopyState.record`), dropped before it is
    written; ``log_model`` hands each job the slice of its copies. A job that stopped (a
    pruned trial) receives nothing more.
    """

    def __init__(self, trackers: list[Trackers], slices: list[PopulationSlice]) -> None:
        self.trackers, self.slices = trackers, slices
        self.closed: set[int] = set()

    def log_init(self, init: dict) -> None:  # each job's init.json is written by run_group
        raise NotImplementedError

    def log_metrics(self, records: list[dict]) -> None:
        by_job: dict[int, list[dict]] = {}
        for r in records:
            job = r.pop("job")
            by_job.setdefault(job, []).append(r)
        for job, rs in by_job.items():
            if job not in self.closed:
                self.trackers[job].log_metrics(rs)

    def log_model(self, step: int, epoch: int, pop) -> None:
        for job, (tracker, view) in enumerate(zip(self.trackers, self.slices)):
            if job not in self.closed:
                tracker.log_model(step, epoch, view)

    def log_summary(self, summary: dict) -> None:
        raise NotImplementedError

    def finish(self, status: str = "finished") -> None:
        for t in self.trackers:
            t.finish(status)


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
        """A job whose seeds all diverged stops, as it does alone (``fit``)."""
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


def group_dir(specs: list[JobSpec]) -> Path:
    """Where a group checkpoints: a folder under the sweep dir named after its jobs."""
    jobs = "|".join(str(s.output_dir.resolve()) for s in specs)
    name = hashlib.sha1(jobs.encode()).hexdigest()[:12]
    return Path(specs[0].sweep_dir or specs[0].output_dir.parent) / GROUPS_DIR / name


def run_group(specs: list[JobSpec]) -> list[float | BaseException]:
    """Train the jobs of one :func:`group_jobs` group as one population; each job's objective
    (or the error that stopped it, alone)."""
    results: list[float | BaseException | None] = [None] * len(specs)
    for i, spec in enumerate(specs):  # finished earlier (a re-run sweep): the stored objective
        done = finished_objective(spec.output_dir, spec.config, spec.volatile)
        if done is not None:
            log.info("%s finished earlier: objective %s", spec.output_dir, done)
            results[i] = done
    pending = [i for i, r in enumerate(results) if r is None]
    if len(pending) == 1:
        results[pending[0]] = _alone(specs[pending[0]])
    if len(pending) > 1:
        with ExitStack() as locks:  # a second writer of any of these dirs stops in one line
            for i in pending:
                locks.enter_context(dir_lock(specs[i].output_dir))
            for i, value in zip(pending, _train_together([specs[i] for i in pending])):
                results[i] = value
    return results


def _alone(spec: JobSpec) -> float | BaseException:
    try:
        return run_job(spec)
    except Exception as e:  # reported per job, as a launcher does
        return e


def _train_together(specs: list[JobSpec]) -> list[float | BaseException]:
    first, t = specs[0], specs[0].trainer
    device = resolve_device(t.device)
    for spec in specs:
        check_writable(spec.output_dir)
    set_determinism(t.deterministic)
    bundle, loss = build_data(first)

    # --- every job's models: a job whose init fails fails alone
    results: list[float | BaseException | None] = [None] * len(specs)
    built = {}
    for k, spec in enumerate(specs):
        try:
            built[k] = build_models(spec, bundle, loss)
        except ConfigError as e:
            results[k] = e
    live = list(built)
    if len(live) < 2:
        for k in live:
            results[k] = _alone(specs[k])
        return results
    jobs = [specs[k] for k in live]

    # --- one population of every job's copies, job after job
    spans = []
    for spec in jobs:
        start = spans[-1][1] if spans else 0
        spans.append((start, start + len(spec.seeds)))
    copies = [CopyState(s, job=j) for j, spec in enumerate(jobs) for s in spec.seeds]
    bundle = bundle.to(device)
    where = group_dir(jobs)
    config = {"jobs": {str(j): spec.config for j, spec in enumerate(jobs)}}
    volatile = [f"jobs.{j}.{v}" for j, spec in enumerate(jobs) for v in spec.volatile]
    ckpt = previous_checkpoint(where, config, volatile)
    recorded = (ckpt or {}).get("layout", {}).get("shards")
    pop = make_population(
        [m.to(device) for k in live for m in built[k][0]],
        [build(spec.optimizer, "optimizer", spec.targets) for spec in jobs for _ in spec.seeds],
        loss_fn(loss, t.huber_delta),
        dropout_seeds=[param_generator(c.seed, "dropout").initial_seed() for c in copies],
        strategy=str(t.strategy),
        amp=t.amp,
        compile=t.compile,
        sample=bundle.x_train[:2].to(device),
        shards=t.shards or recorded,
    )
    layout = {"shards": pop.n_shards, "threads": torch.get_num_threads()}
    loop_cfg = loop_config(first, loss)
    where.mkdir(parents=True, exist_ok=True)
    logs = [spec.output_dir for spec in jobs]
    start_epoch, step = resume(where, ckpt, pop, copies, log_dirs=logs)
    log.info(
        "training %d jobs as one %s population of %d copies (%s)",
        len(jobs), pop.strategy, len(copies), where,
    )  # fmt: skip

    # --- each job's trackers, step-0 diagnostics and pruning, on its own copies
    cache: dict = {}
    slices = [PopulationSlice(pop, a, b, cache) for a, b in spans]
    first_step = 0 if start_epoch == 1 else step + 1
    tracker = GroupTracker([make_trackers(spec, bundle, first_step) for spec in jobs], slices)
    trials = [open_job_trial(spec.trial) for spec in jobs]
    prune = [pruning_hooks(spec, trial) for spec, trial in zip(jobs, trials)]
    hooks = GroupHooks(where, config, layout, prune, spans, tracker, t)
    hooks.restore(ckpt, pop, copies)
    status = "failed"
    try:
        if start_epoch == 1:
            for j, k in enumerate(live):
                _, assignments, facts = built[k]
                seeds = list(jobs[j].seeds)
                report = step0_report(slices[j], bundle, loop_cfg, seeds, assignments, facts)
                tracker.trackers[j].log_init(report)
            cache.clear()
        copies = fit(pop, bundle, loop_cfg, tracker, copies, [hooks], start_epoch, step)
        ran = how_it_ran(pop, layout, bundle)
        for j, k in enumerate(live):
            mine = copies[slice(*spans[j])]
            pruned, job_tracker = hooks.pruned.get(j), tracker.trackers[j]
            results[k] = summarize_job(jobs[j], mine, ran, job_tracker, trials[j], pruned)
        status = "finished"
    except (KeyboardInterrupt, SystemExit):
        status = "interrupted"
        raise
    finally:
        tracker.finish(status)
    return results
