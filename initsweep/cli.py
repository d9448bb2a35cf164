"""Console entry points. The only place (with the instantiation helpers) that reads a DictConfig.

``run(cfg)`` is the flat task function: data → models → init → population → fit → summary. It
returns the objective (mean over seeds) as a float for Hydra multirun and the Optuna sweeper.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import hydra
import torch
from hydra.errors import HydraException, InstantiationException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from initsweep.config import register_configs, validate
from initsweep.data.checks import check_bundle
from initsweep.diagnostics import step0_report
from initsweep.errors import ConfigError, invalid
from initsweep.init import BiasContext, initialize, param_generator
from initsweep.search import Pruned, search_fields, trial_hooks
from initsweep.summary import format_table, summarize
from initsweep.track import FilesTracker, Trackers
from initsweep.track.histograms import Histogrammer
from initsweep.track.wandb import WandbTracker, hydra_job, job_type, study_group
from initsweep.train.checkpoint import Checkpoint, finished_objective, resume
from initsweep.train.loop import CopyState, LoopConfig, fit
from initsweep.train.metrics import METRIC_KEYS, loss_fn, output_units, resolve_loss
from initsweep.train.population import make_population

log = logging.getLogger("initsweep")
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"  # the repo's primary config dir
register_configs()

# configs are code: only these packages may be _target_s (Hydra 1.4 execution allow-list)
TARGETS = ["initsweep.*", "torch.optim.*", "torch.nn.*", "torchvision.*"]
# what Hydra itself may build from config: our callbacks, logging handlers, sweeper/launcher parts
HYDRA_TARGETS = [*TARGETS, "logging.*", "hydra.*", "hydra_plugins.*", "optuna.*", "submitit.*"]


def build(node: DictConfig, **kwargs):
    """``hydra.utils.instantiate`` restricted to :data:`TARGETS`, logged as it goes."""
    log.info("Instantiating <%s>", node.get("_target_"))
    return hydra.utils.instantiate(node, _execution_whitelist_=TARGETS, **kwargs)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"trainer.device={name!r} is invalid: use auto, cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={name!r}: CUDA is not available here; use auto or cpu")
    return device


def check_writable(out: Path) -> None:
    """Fail before any work when the job cannot write its files (nothing else is touched)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ConfigError(
            f"paths.output_dir={str(out)!r} is not writable ({e.strerror}); "
            "choose another hydra.run.dir / hydra.sweep.dir"
        ) from None


def build_models(cfg: DictConfig, bundle, loss: str) -> tuple[list, list]:
    """One initialised model per seed (drawn on the CPU) and each one's init assignment."""
    make_model = build(cfg.model)
    init_cfg = OmegaConf.to_container(cfg.init, resolve=True)
    bias_cfg = OmegaConf.to_container(cfg.bias, resolve=True)
    ctx = BiasContext(
        bundle.task, bundle.class_prior, bundle.y_train, loss, huber_delta=cfg.trainer.huber_delta
    )
    models, assignments = [], []
    for seed in cfg.seeds:
        units = output_units(bundle.num_outputs, loss)
        model = make_model(input_shape=bundle.input_shape, out_features=units)
        # x_train: data-dependent schemes (LSUV) calibrate on a batch of it
        assignments.append(initialize(model, init_cfg, bias_cfg, ctx, seed, bundle.x_train))
        models.append(model)
    return models, assignments


def build_population(
    cfg: DictConfig, models: list, loss: str, device, strategy: str | None = None
):
    """The seeds' copies on ``device``: one stacked population where the model allows it."""
    return make_population(
        [m.to(device) for m in models],
        build(cfg.optimizer),
        loss_fn(loss, cfg.trainer.huber_delta),
        dropout_seeds=[param_generator(s, "dropout").initial_seed() for s in cfg.seeds],
        strategy=strategy or cfg.trainer.strategy,
        amp=cfg.trainer.amp,
        compile=cfg.trainer.compile,
    )


def loop_config(t: DictConfig, loss: str) -> LoopConfig:
    return LoopConfig(
        epochs=t.epochs,
        batch_size=t.batch_size,
        data_seed=t.data_seed,
        log_every=t.log_every,
        loss=loss,
        huber_delta=t.huber_delta,
        eval_batch_size=t.eval_batch_size,
        progress=t.progress,
    )


def make_trackers(cfg: DictConfig, out: Path, bundle, config: dict) -> Trackers:
    """The files tracker always; one W&B run per seed too with ``tracker=wandb``."""
    t, seeds = cfg.tracker, list(cfg.seeds)
    if t.histogram_every < 0:
        raise invalid("tracker.histogram_every", t.histogram_every, "must be >= 0 (0: init only)")
    if t.probe_size < 1:
        raise invalid("tracker.probe_size", t.probe_size, "must be >= 1")
    hist = Histogrammer(t.histogram_every, bundle.x_train[: t.probe_size])
    trackers = [FilesTracker(out, seeds, hist)]
    if t.name == "wandb":
        overrides, sweep_dir = hydra_job()
        trackers.append(
            WandbTracker(
                out,
                seeds,
                config=config,
                names=[f"{cfg.init.name}-{cfg.bias.name}-s{s}" for s in seeds],
                project=t.project,
                entity=t.entity,
                mode=t.mode,
                group=study_group(cfg.name, sweep_dir),
                job_type=job_type(overrides),
                tags=list(t.tags),
                histograms=hist,
            )
        )
    return Trackers(trackers)


def run(cfg: DictConfig) -> float:
    """Train one model copy per seed and return the objective (mean over seeds)."""
    validate(cfg)
    out = Path(cfg.paths.output_dir)
    config = OmegaConf.to_container(cfg, resolve=True)
    done = finished_objective(out, config)
    if done is not None:  # finished earlier (a re-run sweep): only the missing jobs train
        log.info("%s finished earlier: objective %s", out, done)
        return done
    device = resolve_device(cfg.trainer.device)
    check_writable(out)
    if cfg.trainer.deterministic:
        # cuBLAS needs a fixed workspace for deterministic matmuls (set before the first use)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)

    # --- data, models, init
    bundle = build(cfg.dataset)
    check_bundle(bundle, cfg.trainer.batch_size)
    if cfg.objective not in METRIC_KEYS[bundle.task]:
        allowed = ", ".join(sorted(METRIC_KEYS[bundle.task]))
        raise ConfigError(
            f"objective={cfg.objective!r} is not logged for a {bundle.task} task; use one of {allowed}"
        )
    loss = resolve_loss(bundle.task, cfg.trainer.loss)
    models, assignments = build_models(cfg, bundle, loss)
    bundle = bundle.to(device)
    pop = build_population(cfg, models, loss, device)
    loop_cfg = loop_config(cfg.trainer, loss)
    # a killed or requeued job continues from its last epoch (checkpoint.pt), else starts fresh
    copies = [CopyState(s) for s in cfg.seeds]
    start_epoch, step = resume(out, config, pop, copies)

    # --- step-0 diagnostics: the loss at init against theory
    tracker, status = make_trackers(cfg, out, bundle, config), "failed"
    try:  # every tracker finishes (W&B runs close), also when the job fails
        if start_epoch == 1:
            tracker.log_init(step0_report(pop, bundle, loop_cfg, list(cfg.seeds), assignments))

        # --- train; a search trial reports each epoch to its study and may be pruned
        hooks, pruned = [Checkpoint(out, config), *trial_hooks(cfg)], None
        try:
            copies = fit(pop, bundle, loop_cfg, tracker, copies, hooks, start_epoch, step)
        except Pruned as p:  # the copies hold the metrics of the epoch it was pruned after
            log.info("%s", p)
            pruned = p
        t = cfg.trainer
        summary = summarize(copies, cfg.objective, t.on_diverge, t.diverge_penalty)
        summary.update(name=cfg.name, strategy=pop.strategy, config=config)
        summary.update(search_fields(cfg, pruned))
        tracker.log_summary(summary)
        status = "finished"
    except (KeyboardInterrupt, SystemExit):  # SIGINT, SIGTERM (see train()), or a launcher's
        status = (
            "interrupted"  # requeue: the last checkpoint and every metric stay; re-run resumes
        )
        raise
    finally:
        tracker.finish(status)
    print(format_table(summary["aggregate"], f"{cfg.name}: {len(copies)} seeds ({out})"))
    return float(summary["objective"]["value"])


def _run_or_exit(cfg: DictConfig, task=run) -> float:
    """User mistakes end the job with one line and exit code 2, never a traceback."""
    try:
        return task(cfg)
    except (ConfigError, InstantiationException, OmegaConfBaseException, HydraException) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"initsweep: error: {message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as e:
        signum = e.args[0] if e.args else signal.SIGINT
        print(
            f"initsweep: interrupted by {signal.Signals(signum).name}; run the same command "
            "(same output dir) to resume from the last epoch's checkpoint",
            file=sys.stderr,
        )
        sys.exit(128 + signum)


def _terminate(signum: int, frame) -> None:
    raise KeyboardInterrupt(signum)


@hydra.main(config_path=str(CONF_DIR), config_name="train", execution_whitelist=HYDRA_TARGETS)
def _train(cfg: DictConfig) -> float:
    return _run_or_exit(cfg)


def train() -> None:
    """``initsweep-train``: the Hydra app (``python -m initsweep`` does the same)."""
    # SIGTERM ends a job like Ctrl-C: trackers finish, files stay consistent. Launchers that
    # handle it themselves (submitit requeues on its own signals) keep their handler.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
    _train()


@hydra.main(config_path=str(CONF_DIR), config_name="train", execution_whitelist=HYDRA_TARGETS)
def _probe(cfg: DictConfig) -> float:
    from initsweep.probe import probe as probe_task  # imports cli: load it only when used

    return _run_or_exit(cfg, probe_task)


def probe() -> None:
    """``initsweep-probe``: build and initialise the models, print step-0 diagnostics, no training."""
    _probe()


def report(argv: list[str] | None = None) -> None:
    """``initsweep-report DIR [--out OUT] [--log-x]``: tables, plots and index.html of a sweep."""
    import argparse

    from initsweep.report import Options, make_report

    parser = argparse.ArgumentParser(
        prog="initsweep-report",
        description="Tables, plots and an HTML page from a sweep's (or a run's) job files.",
    )
    parser.add_argument("dir", type=Path, help="a multirun sweep dir or a single run's dir")
    parser.add_argument("--out", type=Path, help="where to write the report (default: DIR/report)")
    parser.add_argument(
        "--log-x", action="store_true", help="training curves on a log step axis (first steps)"
    )
    parser.add_argument(
        "--baseline", metavar="KEY=VALUE", help="compare every job with this one, e.g. bias=zeros"
    )
    parser.add_argument("--level", type=float, default=0.95, help="confidence level (0.95)")
    parser.add_argument(
        "--target", help="loss (0.5) or metric:value (val/acc:0.9) for 'steps to reach'"
    )
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        parser.exit(2, f"initsweep-report: error: {args.dir} is not a directory\n")
    if not 0 < args.level < 1:
        parser.exit(2, f"initsweep-report: error: --level={args.level} must be in (0, 1)\n")
    options = Options(args.log_x, args.baseline, args.level, args.target)
    try:
        result = make_report(args.dir, args.out, options)
    except ConfigError as e:
        parser.exit(2, f"initsweep-report: error: {e}\n")
    print(result.text)
    print(f"report: {result.index.resolve()}")
