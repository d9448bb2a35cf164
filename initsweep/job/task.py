"""A job in one direction: data → models → init → population → fit → summary.

:func:`run_job` trains one model copy per seed and returns the objective (mean over seeds) for
Hydra multirun and the Optuna sweeper; :func:`probe_job` stops after step 0 (``initsweep-probe``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch

from initsweep.diagnostics import step0_report
from initsweep.diagnostics.table import format_layers
from initsweep.files import INIT, dir_lock, write_json_atomic
from initsweep.job.build import (
    build_data,
    build_models,
    build_population,
    check_writable,
    loop_config,
    make_trackers,
    resolve_device,
    set_determinism,
)
from initsweep.job.spec import JobSpec
from initsweep.search import JobTrial, Pruned, PruningHook, open_job_trial
from initsweep.search.seeds import seed_attrs
from initsweep.summary import format_table, make_summary, objective_per_seed, objective_value
from initsweep.train.checkpoint import Checkpoint, finished_objective, previous_checkpoint, resume
from initsweep.train.loop import CopyState, fit

log = logging.getLogger("initsweep")


def run_job(spec: JobSpec) -> float:
    """Train one model copy per seed and return the objective (mean over seeds)."""
    out, t = spec.output_dir, spec.trainer
    done = finished_objective(out, spec.config, spec.volatile)
    if done is not None:  # finished earlier (a re-run sweep): only the missing jobs train
        log.info("%s finished earlier: objective %s", out, done)
        return done
    device = resolve_device(t.device)
    check_writable(out)
    with dir_lock(out):  # a second writer of this job dir stops here, in one line
        return _train(spec, device)


def _train(spec: JobSpec, device) -> float:
    out, t = spec.output_dir, spec.trainer
    set_determinism(t.deterministic)

    # --- data, models, init
    bundle, loss = build_data(spec)
    models, assignments, facts = build_models(spec, bundle, loss)
    bundle = bundle.to(device)
    # a killed or requeued job continues from its last epoch (checkpoint.pt), else starts fresh;
    # in the layout it was written with, whatever the launcher's thread count is now
    ckpt = previous_checkpoint(out, spec.config, spec.volatile)
    recorded = (ckpt or {}).get("layout", {}).get("shards")
    pop = build_population(
        spec,
        models,
        loss,
        device,
        sample=bundle.x_train[:2].to(device),
        shards=t.shards or recorded,
    )
    layout = {"shards": pop.n_shards, "threads": torch.get_num_threads()}
    loop_cfg = loop_config(spec, loss)
    copies = [CopyState(s) for s in spec.seeds]
    start_epoch, step = resume(out, ckpt, pop, copies)

    # --- step-0 diagnostics: the loss at init against theory
    first_step = 0 if start_epoch == 1 else step + 1
    tracker, status = make_trackers(spec, bundle, first_step), "failed"
    try:  # every tracker finishes (W&B runs close), also when the job fails
        if start_epoch == 1:
            report = step0_report(pop, bundle, loop_cfg, list(spec.seeds), assignments, facts)
            tracker.log_init(report)

        # --- train; a search trial reports each epoch to its study and may be pruned
        trial, pruned = open_job_trial(spec.trial), None
        saver = Checkpoint(out, spec.config, layout, every=t.checkpoint_every, epochs=t.epochs)
        hooks = [saver, *pruning_hooks(spec, trial)]
        try:
            copies = fit(pop, bundle, loop_cfg, tracker, copies, hooks, start_epoch, step)
        except Pruned as p:  # the copies hold the metrics of the epoch it was pruned after
            log.info("%s", p)
            pruned = p
        value = summarize_job(
            spec, copies, how_it_ran(pop, layout, bundle), tracker, trial, pruned
        )
        status = "finished"
    except (KeyboardInterrupt, SystemExit):  # SIGINT, SIGTERM (see cli.train), a launcher's
        status = (
            "interrupted"  # requeue: the last checkpoint and every metric stay; re-run resumes
        )
        raise
    finally:
        tracker.finish(status)
    return value


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
    spec: JobSpec, copies, ran: dict, tracker, trial: JobTrial | None, pruned
) -> float:
    """``summary.json`` (written through ``tracker``), the search trial's record, the end-of-job
    table; the objective. Every runner of a job ends here (a job alone, a group's)."""
    t = spec.trainer
    summary = make_summary(
        copies,
        spec.objective,
        t.on_diverge,
        t.diverge_penalty,
        extra=summary_extra(spec, ran),
        search=spec.trial.record(pruned) if spec.trial else None,
    )
    tracker.log_summary(summary)
    if trial is not None and pruned is None:  # the trial's record, before the sweeper tells
        trial.record(seeds_of(spec)(copies))
        if summary["status"] == "diverged" and not math.isfinite(objective_of(spec)(copies)):
            trial.prune()  # no value to learn from: pruned at its last reported value
    print(
        format_table(summary["aggregate"], f"{spec.name}: {len(copies)} seeds ({spec.output_dir})")
    )
    return float(summary["objective"]["value"])


def summary_extra(spec: JobSpec, ran: dict) -> dict:
    """What ``summary.json`` says of the job besides its numbers (one place for every runner)."""
    return {"name": spec.name, "tags": list(spec.tags), **ran, "config": spec.config}


def how_it_ran(pop, layout: dict, bundle) -> dict:
    """The population's strategy, its CPU layout, and the data's split sizes and class counts
    (the report's chance levels)."""
    return {"strategy": pop.strategy, "layout": layout, "data": bundle.summary()}


def probe_job(spec: JobSpec) -> float:
    """Initialise one model per seed, write ``init.json``, print the per-layer table, train
    nothing; return the mean excess of the loss at init over its expected value."""
    device = resolve_device(spec.trainer.device)
    bundle, loss = build_data(spec)
    models, assignments, facts = build_models(spec, bundle, loss)
    bundle = bundle.to(device)
    pop = build_population(spec, models, loss, device, strategy="sequential")  # plain modules
    cfg = loop_config(spec, loss)
    report = step0_report(pop, bundle, cfg, list(spec.seeds), assignments, facts)
    spec.output_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(spec.output_dir / INIT, report)  # the file a training job writes at step 0
    print(format_layers(report))
    print(f"\ninit.json: {spec.output_dir / INIT}")
    return sum(s["excess"] for s in report["seeds"]) / len(report["seeds"])
