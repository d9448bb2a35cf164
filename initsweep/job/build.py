"""The parts of a job, built from its spec: device, data, models, population, trackers."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import hydra
import torch

from initsweep.config import TARGETS
from initsweep.data import DataBundle
from initsweep.data.checks import check_bundle
from initsweep.errors import ConfigError
from initsweep.files import unwritable
from initsweep.init import BiasContext, initialize, param_generator
from initsweep.job.spec import JobSpec
from initsweep.track import FilesTracker, Trackers
from initsweep.track.base import Tracker
from initsweep.track.histograms import Histogrammer
from initsweep.track.tensorboard import TensorBoardTracker
from initsweep.track.wandb import WandbTracker
from initsweep.train.loop import LoopConfig
from initsweep.train.metrics import METRIC_KEYS, loss_fn, output_units, resolve_loss
from initsweep.train.population import Population, make_population

log = logging.getLogger("initsweep")


def build(node: dict, **kwargs):
    """``hydra.utils.instantiate`` of a ``_target_`` node, restricted to
    :data:`~initsweep.config.TARGETS` and logged as it goes."""
    log.info("Instantiating <%s>", node.get("_target_"))
    return hydra.utils.instantiate(node, _execution_whitelist_=TARGETS, **kwargs)


def resolve_device(name: str) -> torch.device:
    """``trainer.device``: ``auto`` is CUDA where there is one, else the CPU."""
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
    why = unwritable(out)
    if why:
        raise ConfigError(
            f"paths.output_dir={str(out)!r} is not writable ({why}); "
            "choose another hydra.run.dir / hydra.sweep.dir"
        )
    out.mkdir(parents=True, exist_ok=True)


def set_determinism(on: bool) -> None:
    """``trainer.deterministic``: PyTorch's deterministic algorithms (GPU runs bit-identical)."""
    if on:
        # cuBLAS needs a fixed workspace for deterministic matmuls (set before the first use)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)


def build_data(spec: JobSpec) -> tuple[DataBundle, str]:
    """The dataset, checked, and the loss the job trains with."""
    bundle = build(spec.dataset)
    check_bundle(bundle, spec.trainer.batch_size)
    if spec.objective not in METRIC_KEYS[bundle.task]:
        allowed = ", ".join(sorted(METRIC_KEYS[bundle.task]))
        raise ConfigError(
            f"objective={spec.objective!r} is not logged for a {bundle.task} task; "
            f"use one of {allowed}"
        )
    return bundle, resolve_loss(bundle.task, spec.trainer.loss)


def build_models(spec: JobSpec, bundle: DataBundle, loss: str) -> tuple[list, list]:
    """One initialised model per seed (drawn on the CPU) and each one's init assignment."""
    make_model = build(spec.model)
    ctx = BiasContext(
        bundle.task,
        bundle.class_prior,
        bundle.y_train,
        loss,
        huber_delta=spec.trainer.huber_delta,
    )
    models, assignments = [], []
    for seed in spec.seeds:
        units = output_units(bundle.num_outputs, loss)
        model = make_model(input_shape=bundle.input_shape, out_features=units)
        # x_train: data-dependent schemes (LSUV) calibrate on a batch of it
        assignments.append(initialize(model, spec.init, spec.bias, ctx, seed, bundle.x_train))
        models.append(model)
    return models, assignments


def build_population(
    spec: JobSpec, models: list, loss: str, device: torch.device, strategy: str | None = None
) -> Population:
    """The seeds' copies on ``device``: one stacked population where the model allows it."""
    t = spec.trainer
    return make_population(
        [m.to(device) for m in models],
        build(spec.optimizer),
        loss_fn(loss, t.huber_delta),
        dropout_seeds=[param_generator(s, "dropout").initial_seed() for s in spec.seeds],
        strategy=str(strategy or t.strategy),
        amp=t.amp,
        compile=t.compile,
    )


def loop_config(spec: JobSpec, loss: str) -> LoopConfig:
    t = spec.trainer
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


def make_trackers(spec: JobSpec, bundle: DataBundle, first_step: int = 0) -> Trackers:
    """The files tracker always; one W&B run and one TensorBoard run per seed with
    ``tracker=wandb`` / ``tracker=tensorboard`` (or both: ``tracker=[wandb,tensorboard]``).

    ``first_step`` is the first step the job will log (after a resumed checkpoint's step).
    A tracker that fails to start closes those started before it.
    """
    t, seeds, out = spec.tracker, list(spec.seeds), spec.output_dir
    hist = Histogrammer(t.histogram_every, bundle.x_train[: t.probe_size], t.gradients)
    trackers: list[Tracker] = [FilesTracker(out, seeds, hist)]
    runs = spec.runs
    try:
        if t.wandb is not None:
            trackers.append(
                WandbTracker(
                    out,
                    seeds,
                    config=spec.config,
                    layout=runs,
                    metrics=sorted(METRIC_KEYS[bundle.task]),
                    project=t.wandb.project,
                    entity=t.wandb.entity,
                    mode=str(t.wandb.mode),
                    tags=spec.tags,
                    histograms=hist,
                )
            )
        if t.tensorboard is not None:
            trackers.append(
                TensorBoardTracker(
                    out,
                    seeds,
                    names=[runs.dir_name(s) for s in seeds],
                    flush_secs=t.tensorboard.flush_secs,
                    histograms=hist,
                    first_step=first_step,
                )
            )
    except BaseException:
        Trackers(trackers).finish("failed")
        raise
    return Trackers(trackers)
