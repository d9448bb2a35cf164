"""The parts of a job, built from its spec: device, data, models, population, trackers."""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import hydra
import torch
from hydra.errors import InstantiationException

from initsweep.config import TARGETS
from initsweep.data import DataBundle
from initsweep.data.checks import check_bundle
from initsweep.errors import ConfigError, unknown_key
from initsweep.files import unwritable
from initsweep.init import BiasContext, initialize, param_generator
from initsweep.job.spec import JobSpec
from initsweep.targets import check_node, hydra_refusal
from initsweep.track import FilesTracker, Trackers
from initsweep.track.histograms import Histogrammer
from initsweep.track.wandb import WandbTracker, job_type, study_group
from initsweep.train.loop import LoopConfig
from initsweep.train.metrics import METRIC_KEYS, loss_fn, output_units, resolve_loss
from initsweep.train.population import Population, make_population

log = logging.getLogger("initsweep")


def build(node, key: str = "node", targets: Sequence[str] = TARGETS):
    """``hydra.utils.instantiate`` of a ``_target_`` node (the job's ``dataset``, ``model``,
    ``optimizer``), logged as it goes; a ``_partial_`` node gives the partial, as in Hydra.

    Only ``targets`` may be built (the job passes its spec's, ``allow_targets`` included): checked
    by name before anything is imported, and by Hydra against the resolved objects, this list
    alone, not the app's. A key the callable does not take (``+model.hiden=…``) fails before the
    call, naming the closest one.
    """
    check_node(node, key, targets)
    log.info("Instantiating <%s>", node["_target_"])
    only = hydra.utils.execution_whitelist(with_definitions(tuple(targets)), reset=True)
    try:
        made = hydra.utils.instantiate(node, _partial_=True, _execution_whitelist_=only)
    except InstantiationException as e:
        refusal = hydra_refusal(e, key)
        if refusal is None:
            raise
        raise refusal from None
    check_arguments(made, key)
    return made if node.get("_partial_") else made()


@functools.cache
def with_definitions(targets: tuple[str, ...]) -> tuple[str, ...]:
    """``targets`` plus, for each full name, the name of what it names where it is defined.

    Hydra checks a partial's call and a callable result (a model) by where they are defined:
    ``initsweep.models.MLP`` is ``initsweep.models.mlp.MLP``.
    """
    defined = []
    for target in targets:
        module, _, name = target.rpartition(".")
        if name == "*":
            continue
        try:
            obj = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):  # Hydra's own error names what is missing
            continue
        defined.append(f"{obj.__module__}.{obj.__qualname__}")
    return tuple(dict.fromkeys([*targets, *defined]))


def check_arguments(made: functools.partial, key: str) -> None:
    """Every key of the node is a parameter of its callable (unless it takes ``**kwargs``)."""
    try:
        params = inspect.signature(made.func).parameters
    except (TypeError, ValueError):  # no signature to check against: the call will tell
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    for name, value in made.keywords.items():
        if name not in params:
            raise unknown_key(f"{key}.{name}", value, params)


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
    bundle = build(spec.dataset, "dataset", spec.targets)
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
    make_model = build(spec.model, "model", spec.targets)
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
        if not models:
            check_memory(model, len(spec.seeds), resolve_device(spec.trainer.device))
        # x_train: data-dependent schemes (LSUV) calibrate on a batch of it
        assignments.append(initialize(model, spec.init, spec.bias, ctx, seed, bundle.x_train))
        models.append(model)
    return models, assignments


def free_memory(device: torch.device) -> int | None:
    """Bytes that can be allocated now on ``device`` (``None`` where the OS does not say)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:  # Linux: MemAvailable counts reclaimable caches too
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def check_memory(model: torch.nn.Module, copies: int, device: torch.device) -> None:
    """Refuse, before allocating them, copies that cannot fit: the models (built on the CPU),
    and on the device their weights, a stacked copy and the gradients. A lower bound (optimizer
    state and activations come on top), so a job that fits is never refused."""
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    cpu = torch.device("cpu")
    for where, need in [(cpu, copies * size), (device, 3 * copies * size)]:
        free = free_memory(where)
        if free is not None and need > free:
            raise ConfigError(
                f"seeds: {copies} copies of this model ({size / 2**20:.0f} MiB of parameters "
                f"each) need at least {need / 2**30:.1f} GiB on {where} but {free / 2**30:.1f} GiB "
                "are free; run fewer seeds per job (split them over a multirun, e.g. -m "
                "'seeds=[0,1,2],[3,4,5]') or a smaller model"
            )


def build_population(
    spec: JobSpec,
    models: list,
    loss: str,
    device: torch.device,
    strategy: str | None = None,
    shards: int | None = None,
) -> Population:
    """The seeds' copies on ``device``: one stacked population where the model allows it,
    split into ``shards`` blocks on the CPU (``None``: ``trainer.shards``, else one per
    thread)."""
    t = spec.trainer
    return make_population(
        [m.to(device) for m in models],
        build(spec.optimizer, "optimizer", spec.targets),
        loss_fn(loss, t.huber_delta),
        dropout_seeds=[param_generator(s, "dropout").initial_seed() for s in spec.seeds],
        strategy=str(strategy or t.strategy),
        amp=t.amp,
        compile=t.compile,
        shards=shards or t.shards,
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


def make_trackers(spec: JobSpec, bundle: DataBundle) -> Trackers:
    """The files tracker always; one W&B run per seed too with ``tracker=wandb``."""
    t, seeds, out = spec.tracker, list(spec.seeds), spec.output_dir
    hist = Histogrammer(t.histogram_every, bundle.x_train[: t.probe_size])
    trackers = [FilesTracker(out, seeds, hist)]
    if t.name == "wandb":
        trackers.append(
            WandbTracker(
                out,
                seeds,
                config=spec.config,
                names=[f"{spec.init['name']}-{spec.bias['name']}-s{s}" for s in seeds],
                project=t.project,
                entity=t.entity,
                mode=str(t.mode),
                group=study_group(spec.name, spec.sweep_dir),
                job_type=job_type(spec.overrides),
                tags=list(t.tags),
                histograms=hist,
            )
        )
    return Trackers(trackers)
