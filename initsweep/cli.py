"""Console entry points. The only place (with the instantiation helpers) that reads a DictConfig.

``run(cfg)`` is the flat task function: data → models → init → population → fit → summary. It
returns the objective (mean over seeds) as a float for Hydra multirun and the Optuna sweeper.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import torch
from hydra.errors import HydraException, InstantiationException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from initsweep.config import register_configs, validate
from initsweep.diagnostics import step0_report
from initsweep.errors import ConfigError
from initsweep.init import BiasContext, initialize, param_generator
from initsweep.summary import format_table, summarize
from initsweep.track import FilesTracker, Trackers
from initsweep.train.loop import CopyState, LoopConfig, fit
from initsweep.train.metrics import METRIC_KEYS, loss_fn, resolve_loss
from initsweep.train.population import SequentialPopulation

log = logging.getLogger("initsweep")
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"  # the repo's primary config dir
register_configs()

# configs are code: only these packages may be _target_s (Hydra 1.4 execution allow-list)
TARGETS = ["initsweep.*", "torch.optim.*", "torch.nn.*", "torchvision.*"]


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


def build_models(cfg: DictConfig, bundle, loss: str) -> tuple[list, list]:
    """One initialised model per seed (drawn on the CPU) and each one's init assignment."""
    make_model = build(cfg.model)
    init_cfg = OmegaConf.to_container(cfg.init, resolve=True)
    bias_cfg = OmegaConf.to_container(cfg.bias, resolve=True)
    ctx = BiasContext(bundle.task, bundle.class_prior, bundle.y_train, loss)
    models, assignments = [], []
    for seed in cfg.seeds:
        model = make_model(input_shape=bundle.input_shape, out_features=bundle.num_outputs)
        assignments.append(initialize(model, init_cfg, bias_cfg, ctx, seed))
        models.append(model)
    return models, assignments


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


def run(cfg: DictConfig) -> float:
    """Train one model copy per seed and return the objective (mean over seeds)."""
    validate(cfg)
    out = Path(cfg.paths.output_dir)
    device = resolve_device(cfg.trainer.device)

    # --- data, models, init
    bundle = build(cfg.dataset)
    if cfg.objective not in METRIC_KEYS[bundle.task]:
        allowed = ", ".join(sorted(METRIC_KEYS[bundle.task]))
        raise ConfigError(
            f"objective={cfg.objective!r} is not logged for a {bundle.task} task; use one of {allowed}"
        )
    loss = resolve_loss(bundle.task, cfg.trainer.loss)
    models, assignments = build_models(cfg, bundle, loss)
    bundle = bundle.to(device)
    pop = SequentialPopulation(
        [m.to(device) for m in models],
        build(cfg.optimizer),
        loss_fn(loss, cfg.trainer.huber_delta),
        dropout_seeds=[param_generator(s, "dropout").initial_seed() for s in cfg.seeds],
    )
    loop_cfg = loop_config(cfg.trainer, loss)

    # --- step-0 diagnostics: the loss at init against theory
    tracker = Trackers([FilesTracker(out)])
    tracker.log_init(step0_report(pop, bundle, loop_cfg, list(cfg.seeds), assignments))

    # --- train
    copies = fit(pop, bundle, loop_cfg, tracker, [CopyState(s) for s in cfg.seeds])
    summary = summarize(copies, cfg.objective)
    summary.update(
        name=cfg.name, strategy=pop.strategy, config=OmegaConf.to_container(cfg, resolve=True)
    )
    tracker.log_summary(summary)
    tracker.finish()
    print(format_table(summary["aggregate"], f"{cfg.name}: {len(copies)} seeds ({out})"))
    return float(summary["objective"]["value"])


def _run_or_exit(cfg: DictConfig) -> float:
    """User mistakes end the job with one line and exit code 2, never a traceback."""
    try:
        return run(cfg)
    except (ConfigError, InstantiationException, OmegaConfBaseException, HydraException) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"initsweep: error: {message}", file=sys.stderr)
        sys.exit(2)


@hydra.main(config_path=str(CONF_DIR), config_name="train")
def _train(cfg: DictConfig) -> float:
    return _run_or_exit(cfg)


def train() -> None:
    """``initsweep-train``: the Hydra app (``python -m initsweep`` does the same)."""
    _train()
