"""A job in one direction: data → models → init → population → fit → summary.

:func:`run_job` trains one model copy per seed and returns the objective (mean over seeds) for
Hydra multirun and the Optuna sweeper; :func:`probe_job` stops after step 0 (``initsweep-probe``).
"""

from __future__ import annotations

import logging

from initsweep.diagnostics import step0_report
from initsweep.diagnostics.table import format_layers
from initsweep.files import INIT, write_json_atomic
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
from initsweep.search import Pruned, trial_hooks
from initsweep.summary import format_table, make_summary, objective_value
from initsweep.train.checkpoint import Checkpoint, finished_objective, resume
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
    set_determinism(t.deterministic)

    # --- data, models, init
    bundle, loss = build_data(spec)
    models, assignments = build_models(spec, bundle, loss)
    bundle = bundle.to(device)
    pop = build_population(spec, models, loss, device)
    loop_cfg = loop_config(spec, loss)
    # a killed or requeued job continues from its last epoch (checkpoint.pt), else starts fresh
    copies = [CopyState(s) for s in spec.seeds]
    start_epoch, step = resume(out, spec.config, pop, copies, spec.volatile)

    def objective(copies: list[CopyState]) -> float:
        return objective_value(copies, spec.objective, t.on_diverge, t.diverge_penalty)

    # --- step-0 diagnostics: the loss at init against theory
    tracker, status = make_trackers(spec, bundle), "failed"
    try:  # every tracker finishes (W&B runs close), also when the job fails
        if start_epoch == 1:
            tracker.log_init(step0_report(pop, bundle, loop_cfg, list(spec.seeds), assignments))

        # --- train; a search trial reports each epoch to its study and may be pruned
        hooks, pruned = [Checkpoint(out, spec.config), *trial_hooks(spec.trial, objective)], None
        try:
            copies = fit(pop, bundle, loop_cfg, tracker, copies, hooks, start_epoch, step)
        except Pruned as p:  # the copies hold the metrics of the epoch it was pruned after
            log.info("%s", p)
            pruned = p
        summary = make_summary(
            copies,
            spec.objective,
            t.on_diverge,
            t.diverge_penalty,
            extra={
                "name": spec.name,
                "strategy": pop.strategy,
                "data": bundle.summary(),  # split sizes, class counts: the report's chance levels
                "config": spec.config,
            },
            search=spec.trial.record(pruned) if spec.trial else None,
        )
        tracker.log_summary(summary)
        status = "finished"
    except (KeyboardInterrupt, SystemExit):  # SIGINT, SIGTERM (see cli.train), a launcher's
        status = (
            "interrupted"  # requeue: the last checkpoint and every metric stay; re-run resumes
        )
        raise
    finally:
        tracker.finish(status)
    print(format_table(summary["aggregate"], f"{spec.name}: {len(copies)} seeds ({out})"))
    return float(summary["objective"]["value"])


def probe_job(spec: JobSpec) -> float:
    """Initialise one model per seed, write ``init.json``, print the per-layer table, train
    nothing; return the mean excess of the loss at init over its expected value."""
    device = resolve_device(spec.trainer.device)
    bundle, loss = build_data(spec)
    models, assignments = build_models(spec, bundle, loss)
    bundle = bundle.to(device)
    pop = build_population(spec, models, loss, device, strategy="sequential")  # plain modules
    report = step0_report(pop, bundle, loop_config(spec, loss), list(spec.seeds), assignments)
    spec.output_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(spec.output_dir / INIT, report)  # the file a training job writes at step 0
    print(format_layers(report))
    print(f"\ninit.json: {spec.output_dir / INIT}")
    return sum(s["excess"] for s in report["seeds"]) / len(report["seeds"])
