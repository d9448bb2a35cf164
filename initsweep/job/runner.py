"""The one runner: every initsweep job runs here, alone or with others.

A job alone (``initsweep-train``, a job of a basic or joblib multirun, a search trial) is a group
of one; the population launcher hands :func:`run_jobs` groups of jobs that may share a population
(:func:`~initsweep.job.group.stack_key`); the probe (``initsweep-probe``) is the same runner
stopped after step 0. The sequence, once:

    finished earlier? → lock each dir → data → each job's models → one population of every copy
    → step-0 diagnostics → fit (checkpoint, pruning) → each job's summary

A job's failure is its own: :func:`run_jobs` returns the error in the job's place (what the jobs
share failing fails each of them), and its caller reports it (the CLI: one line, ``status.json``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from contextlib import ExitStack

import torch

from initsweep.diagnostics import step0_report
from initsweep.diagnostics.table import format_layers
from initsweep.files import INIT, dir_lock, write_json_atomic
from initsweep.job.build import (
    build,
    build_data,
    build_models,
    build_population,
    check_writable,
    loop_config,
    make_trackers,
    optimizer_scales,
    resolve_device,
    set_determinism,
)
from initsweep.job.group import GroupHooks, GroupTracker, PopulationSlice, checkpoint_of, spans_of
from initsweep.job.logs import job_logs
from initsweep.job.spec import JobSpec
from initsweep.search import JobTrial, PruningHook, open_job_trial
from initsweep.search.seeds import seed_attrs
from initsweep.summary import format_table, make_summary, objective_per_seed, objective_value
from initsweep.train.checkpoint import finished_objective, previous_checkpoint, resume
from initsweep.train.loop import CopyState, eval_split, fit

log = logging.getLogger("initsweep")

# a job's objective (the probe's: its mean excess loss at init), or the error that stopped it
Result = float | Exception


def run_jobs(specs: Sequence[JobSpec], until_init: bool = False) -> list[Result]:
    """Run ``specs`` (one job, or a :func:`~initsweep.job.group.group_jobs` group) as one
    population; each job's objective, or the error that stopped it, in their order.

    A job that finished earlier here (a re-run sweep) returns its stored objective and trains
    nothing. ``until_init``: stop after the step-0 diagnostics (``init.json`` and the per-layer
    table; the probe), whatever the job's dir holds.
    """
    results: list[Result | None] = [None] * len(specs)
    with ExitStack() as locks:
        for i, spec in enumerate(specs):
            with job_logs(spec.output_dir):
                try:
                    done = None if until_init else finished_earlier(spec)
                    if done is None:  # a second writer of this dir stops here, in one line
                        check_writable(spec.output_dir)
                        locks.enter_context(dir_lock(spec.output_dir))
                    results[i] = done
                except Exception as e:
                    results[i] = e
        pending = [i for i, r in enumerate(results) if r is None]
        if pending:
            try:
                ran = _run([specs[i] for i in pending], until_init)
            except Exception as e:  # what the jobs share failed: the data, the population, fit
                ran = [e] * len(pending)
            for i, r in zip(pending, ran):
                results[i] = r
    return results


def finished_earlier(spec: JobSpec) -> float | None:
    """The stored objective of a job that finished earlier in its dir, else ``None``."""
    done = finished_objective(spec.output_dir, spec.config, spec.volatile)
    if done is not None:
        log.info("%s finished earlier: objective %s", spec.output_dir, done)
    return done


def _run(specs: list[JobSpec], until_init: bool) -> list[Result]:
    if until_init and specs[0].config.get("coord_check"):  # the probe over widths instead
        return [_coord_check(spec) for spec in specs]
    first, t = specs[0], specs[0].trainer
    device = resolve_device(t.device)
    set_determinism(t.deterministic)
    bundle, loss = build_data(first)

    # --- each job's models and optimizer: a job whose init fails fails alone
    results: list[Result | None] = [None] * len(specs)
    built = {}
    for k, spec in enumerate(specs):
        with job_logs(spec.output_dir):
            try:
                made = build_models(spec, bundle, loss)
                built[k] = (*made, build(spec.optimizer, "optimizer", spec.targets))
            except Exception as e:
                results[k] = e
    live = list(built)
    if not live:
        return results
    jobs = [specs[k] for k in live]
    models, assignments, facts, optimizers = zip(*(built[k] for k in live))
    seeds = [s for spec in jobs for s in spec.seeds]  # every copy's, job after job

    # --- one population of every job's copies
    bundle = bundle.to(device)
    where, config, volatile = checkpoint_of(jobs)
    ckpt = None if until_init else previous_checkpoint(where, config, volatile)
    # in the layout it was written with, whatever the launcher's thread count is now
    recorded = (ckpt or {}).get("layout", {}).get("shards")
    pop = build_population(
        first,
        [m for job_models in models for m in job_models],
        loss,
        device,
        strategy="sequential" if until_init else None,  # the probe: plain modules, no stacking
        sample=bundle.x_train[:2].to(device),
        shards=t.shards or recorded,
        optimizer=[opt for spec, opt in zip(jobs, optimizers) for _ in spec.seeds],
        seeds=seeds,
        scales=[  # μP jobs: per-parameter multipliers of their optimizer's numbers
            optimizer_scales(spec, job_facts, opt)
            for spec, job_facts, opt in zip(jobs, facts, optimizers)
            for _ in spec.seeds
        ],
        tokens=bundle.task == "tokens",
    )
    loop_cfg = loop_config(first, loss)
    assignments = [a for job_assignments in assignments for a in job_assignments]
    facts = facts[0]  # one architecture: the same for every job
    if until_init:
        report = step0_report(pop, bundle, loop_cfg, seeds, assignments, facts)
        values = [probed(spec, report, span) for spec, span in zip(jobs, spans_of(jobs))]
    else:
        values = _train(jobs, pop, bundle, loop_cfg, where, config, ckpt, assignments, facts)
    for k, value in zip(live, values):
        results[k] = value
    return results


def _coord_check(spec: JobSpec) -> Result:
    """``initsweep-probe coord_check=on``: the job's coordinate check (its own populations, one
    per width: :mod:`initsweep.job.coord`)."""
    from initsweep.job.coord import coord_check_job

    with job_logs(spec.output_dir):
        try:
            return coord_check_job(spec)
        except Exception as e:
            return e


def probed(spec: JobSpec, report: dict, span: tuple[int, int]) -> float:
    """The probe's end of a job: its ``init.json`` (the file a training job writes at step 0),
    the per-layer table; the mean excess of the loss at init over its expected value."""
    mine = {**report, "seeds": report["seeds"][span[0] : span[1]]}
    spec.output_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(spec.output_dir / INIT, mine)
    print(format_layers(mine))
    print(f"\ninit.json: {spec.output_dir / INIT}")
    return sum(s["excess"] for s in mine["seeds"]) / len(mine["seeds"])


def _train(jobs, pop, bundle, loop_cfg, where, config, ckpt, assignments, facts) -> list[float]:
    spans = spans_of(jobs)
    copies = [CopyState(s, job=j) for j, spec in enumerate(jobs) for s in spec.seeds]
    layout = {"shards": pop.n_shards, "threads": torch.get_num_threads()}
    # a killed or requeued run continues from its last epoch, else starts fresh
    where.mkdir(parents=True, exist_ok=True)
    start_epoch, step = resume(where, ckpt, pop, copies, log_dirs=[s.output_dir for s in jobs])
    if len(jobs) > 1:
        log.info(
            "training %d jobs as one %s population of %d copies (%s)",
            len(jobs), pop.strategy, len(copies), where,
        )  # fmt: skip

    slices = [PopulationSlice(pop, a, b) for a, b in spans]
    first_step = 0 if start_epoch == 1 else step + 1
    tracker = GroupTracker(open_trackers(jobs, bundle, first_step), slices)
    status = "failed"
    try:  # every tracker finishes (W&B runs close), also when the run fails
        # --- each job's trial: it reports each epoch to its study and may be pruned alone
        trials = [open_job_trial(spec.trial) for spec in jobs]
        prune = [pruning_hooks(spec, trial) for spec, trial in zip(jobs, trials)]
        hooks = GroupHooks(where, config, layout, prune, spans, tracker, jobs[0].trainer)
        hooks.restore(ckpt, pop, copies)

        # --- step-0 diagnostics: the loss at init against theory, measured once for both
        at_init = None
        if start_epoch == 1:
            at_init = eval_split(pop, bundle.x_train, bundle.y_train, bundle, loop_cfg)
            seeds = [c.seed for c in copies]
            report = step0_report(pop, bundle, loop_cfg, seeds, assignments, facts, at_init)
            tracker.log_init(report)

        copies = fit(pop, bundle, loop_cfg, tracker, copies, [hooks], start_epoch, step, at_init)
        ran = how_it_ran(pop, layout, bundle)
        values = []
        for j, (spec, (a, b)) in enumerate(zip(jobs, spans)):
            with job_logs(spec.output_dir):
                pruned = hooks.pruned.get(j)
                values.append(summarize_job(spec, j, copies[a:b], ran, tracker, trials[j], pruned))
        status = "finished"
    except (KeyboardInterrupt, SystemExit):  # SIGINT, SIGTERM (see cli.train), a requeue:
        status = "interrupted"  # the last checkpoint and every metric stay; a re-run resumes
        raise
    finally:
        tracker.finish(status)
    return values


def open_trackers(jobs: list[JobSpec], bundle, first_step: int) -> list:
    """Each job's trackers; when one fails to start, those started before it close."""
    opened = []
    try:
        for spec in jobs:
            opened.append(make_trackers(spec, bundle, first_step))
    except BaseException:
        for trackers in opened:
            trackers.finish("failed")
        raise
    return opened


def objective_of(spec: JobSpec) -> Callable[[list[CopyState]], float]:
    """The job's objective over its seeds' copies, as the job returns it."""
    t = spec.trainer
    return lambda copies: objective_value(copies, spec.objective, t.on_diverge, t.diverge_penalty)


def seeds_of(spec: JobSpec) -> Callable[[list[CopyState]], dict]:
    """What a search trial records of the job's seeds (per-seed objective, mean, std, n)."""
    t = spec.trainer

    def attrs(copies: list[CopyState]) -> dict:
        per_seed = objective_per_seed(copies, spec.objective, t.on_diverge, t.diverge_penalty)
        return seed_attrs(per_seed, sum(c.diverged_step is not None for c in copies))

    return attrs


def pruning_hooks(spec: JobSpec, trial: JobTrial | None) -> list[PruningHook]:
    """A search trial's per-epoch report to its study (which may prune it), if it can prune."""
    if trial is None or not trial.can_prune:
        return []
    return [PruningHook(trial, objective_of(spec), seeds_of(spec))]


def summarize_job(
    spec: JobSpec, job: int, copies, ran: dict, tracker, trial: JobTrial | None, pruned
) -> float:
    """Job ``job``'s ``summary.json`` (through ``tracker``), its search trial's record and its
    results table (logged: the terminal and the job's ``train.log``); its objective."""
    t = spec.trainer
    summary = make_summary(
        copies,
        spec.objective,
        t.on_diverge,
        t.diverge_penalty,
        extra={"name": spec.name, "tags": list(spec.tags), **ran, "config": spec.config},
        search=spec.trial.record(pruned) if spec.trial else None,
    )
    tracker.log_summary({**summary, "job": job})
    if trial is not None and pruned is None:  # the trial's record, before the sweeper tells
        trial.record(seeds_of(spec)(copies))
        if summary["status"] == "diverged" and not math.isfinite(objective_of(spec)(copies)):
            trial.prune()  # no value to learn from: pruned at its last reported value
    title = f"{spec.name}: {len(copies)} seeds ({spec.output_dir})"
    log.info("%s", format_table(summary["aggregate"], title))
    return float(summary["objective"]["value"])


def how_it_ran(pop, layout: dict, bundle) -> dict:
    """The population's strategy, its CPU layout, and the data's split sizes and class counts
    (the report's chance levels)."""
    return {"strategy": pop.strategy, "layout": layout, "data": bundle.summary()}
