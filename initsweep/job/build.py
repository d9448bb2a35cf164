"""The parts of a job, built from its spec: device, data, models, population, trackers."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import logging
import os
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path

import hydra
import torch
from hydra.errors import InstantiationException
from torch import Tensor, nn

from initsweep.config import TARGETS
from initsweep.data import DataBundle
from initsweep.data.checks import check_bundle
from initsweep.errors import ConfigError, first_line, invalid, unknown_key
from initsweep.files import unwritable
from initsweep.init import BiasContext, ModelFacts, initialize, model_facts, param_generator
from initsweep.init.gain import default_gain_note
from initsweep.init.mup_lr import multipliers as mup_multipliers
from initsweep.init.widths import width_facts
from initsweep.job.spec import JobSpec
from initsweep.targets import check_node, find_targets, hydra_refusal
from initsweep.track import FilesTracker, Trackers
from initsweep.track.base import TrackedJob, Tracker
from initsweep.track.histograms import Histogrammer
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
    named = tuple(dict.fromkeys(str(t) for _, t in find_targets(node, key)))
    only = hydra.utils.execution_whitelist(with_definitions(tuple(targets), named), reset=True)
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
def with_definitions(targets: tuple[str, ...], named: tuple[str, ...]) -> tuple[str, ...]:
    """``targets`` plus, for each full name among them, the name of what it names where it is
    defined.

    Hydra checks a partial's call and a callable result (a model) by where they are defined:
    ``initsweep.models.MLP`` is ``initsweep.models.mlp.MLP``. Only what the node names
    (``named``) is imported here, as Hydra imports it anyway; the other names are looked up in
    modules already loaded (a result's class is loaded with the callable that makes it), so a job
    does not import every allowed module (torchvision alone takes a second).
    """
    defined = []
    for target in dict.fromkeys([*named, *targets]):
        if target not in targets or target.endswith(".*"):  # a pattern matches the definition too
            continue
        module, _, name = target.rpartition(".")
        try:
            if target in named:  # imported here, as Hydra would
                obj = getattr(importlib.import_module(module), name)
            else:  # only where already loaded, never imported for this
                obj = vars(sys.modules[module])[name]
        except (ImportError, AttributeError, KeyError):  # Hydra's own error names what is missing
            continue
        defined.append(f"{obj.__module__}.{obj.__qualname__}")
        made = _returns(obj)  # a factory's model (resnet18 → TorchvisionNet): Hydra checks it too
        if made is not None:
            defined.append(f"{made.__module__}.{made.__qualname__}")
    return tuple(dict.fromkeys([*targets, *defined]))


def _returns(factory) -> type | None:
    """The class a factory function's return annotation names, if any."""
    if inspect.isclass(factory) or not callable(factory):
        return None
    try:
        made = typing.get_type_hints(factory).get("return")
    except Exception:  # an annotation that does not resolve: nothing to add
        return None
    return made if inspect.isclass(made) else None


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


# keys of a model's yaml that tell initsweep about the model (see initsweep.init.InitModel);
# the model's class gets them too only if its constructor takes them
DECLARED_KEYS = ("output_layer", "activation", "width_key")
# what the job offers every model's constructor: the data's input shape and the output units
SIZE_KEYS = ("input_shape", "out_features")


def model_factory(
    node: dict, targets: Sequence[str] = TARGETS
) -> tuple[Callable[..., nn.Module], dict]:
    """The model's constructor (a partial of its ``_target_``) and what its yaml declares."""
    if not node.get("_partial_"):
        raise ConfigError(
            f"model._target_={node.get('_target_')!r}: the model yaml needs `_partial_: true` "
            "(the job builds one model per seed)"
        )
    check_node(node, "model", targets)  # every _target_ of it, the declared keys' too
    declared = {k: node[k] for k in DECLARED_KEYS if k in node}
    for key, value in declared.items():
        if not isinstance(value, str):
            raise invalid(f"model.{key}", value, "give a name (an activation, a layer's name)")
    made = build({k: v for k, v in node.items() if k not in DECLARED_KEYS}, "model", targets)
    takes = _accepted(made.func)
    kw = {**made.keywords, **{k: v for k, v in declared.items() if takes(k)}}
    return functools.partial(made.func, *made.args, **kw), declared


def _accepted(fn) -> Callable[[str], bool]:
    """Does ``fn`` take a keyword argument of this name (any name, with ``**kwargs``)?"""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: offer it everything
        return lambda name: True
    names = {p.name for p in params}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return lambda name: True
    return names.__contains__


def build_models(
    spec: JobSpec, bundle: DataBundle, loss: str, base_width: int | None = None
) -> tuple[list, list, ModelFacts]:
    """One initialised model per seed (drawn on the CPU), each one's init assignment, and what
    the models are (activation, output layer: declared in the yaml, or found on the first; their
    parameters against their base shapes under ``init=mup``, or against ``base_width``)."""
    make_model, declared = model_factory(spec.model, spec.targets)
    units = output_units(bundle.num_outputs, loss)
    takes = _accepted(make_model.func)
    sizes = dict(zip(SIZE_KEYS, (bundle.input_shape, units)))
    sizes = {k: v for k, v in sizes.items() if takes(k) and k not in make_model.keywords}
    ctx = BiasContext(
        bundle.task,
        bundle.class_prior,
        bundle.y_train,
        loss,
        huber_delta=spec.trainer.huber_delta,
    )
    sample = bundle.x_train[:2].to("cpu")
    models, assignments, facts = [], [], None
    for seed in spec.seeds:
        model = make_model(**sizes)
        if facts is None:
            check_memory(model, len(spec.seeds), resolve_device(spec.trainer.device))
            check_outputs(model, sample, units, bundle.task, loss)
            facts = model_facts(model, declared, sample)
            if spec.init["name"] == "mup":  # μP: every parameter against its base shape
                base_width = spec.init["base_width"]
            if base_width is not None:
                key = declared.get("width_key") or getattr(model, "width_key", None)
                made = functools.partial(make_model, **sizes)
                widths = width_facts(made, key, base_width, facts.output_layer)
                facts = dataclasses.replace(facts, widths=widths)
            note = default_gain_note(spec.init["name"], dict(spec.init), facts.activation)
            if note:  # He's √2 on a linear or tanh model: once per job
                log.warning(note)
        # x_train: data-dependent schemes (LSUV) calibrate on a batch of it
        assignments.append(
            initialize(model, spec.init, spec.bias, ctx, seed, bundle.x_train, facts=facts)
        )
        models.append(model)
    return models, assignments, facts


@torch.no_grad()
def check_outputs(model: nn.Module, sample: Tensor, units: int, task: str, loss: str) -> None:
    """The model maps ``[N, *input_shape]`` to ``[N, units]`` (tokens: ``[N, T, units]``); else
    one line saying what to set."""
    try:
        out = model.eval()(sample)
    except Exception as e:  # the user's forward: say what it was given
        raise ConfigError(
            f"model: {type(model).__name__} failed on a batch of shape {list(sample.shape)} "
            f"({type(e).__name__}: {first_line(e)}); check the model's input sizes"
        ) from None
    finally:
        model.train()
    # a token task scores every position: [N, T, units]
    want = (len(sample), *sample.shape[1:2], units) if task == "tokens" else (len(sample), units)
    if not isinstance(out, Tensor) or out.shape != want:
        got = list(out.shape) if isinstance(out, Tensor) else type(out).__name__
        need = "[N, T, " if task == "tokens" else "[N, "
        raise ConfigError(
            f"model: {type(model).__name__} returns {got} for {len(sample)} inputs; a {task} "
            f"task with loss {loss} needs {need}{units}] (set the model's output size)"
        )


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


def optimizer_scales(spec: JobSpec, facts: ModelFacts | None, make_optimizer) -> dict | None:
    """``init=mup``: each parameter's multipliers of the optimizer's numbers, by name (μP's
    per-layer learning rates, :mod:`initsweep.init.mup_lr`); any other scheme: None."""
    if spec.init["name"] != "mup" or facts is None or facts.widths is None:
        return None
    cls = getattr(make_optimizer, "func", make_optimizer)
    return mup_multipliers(facts.widths, cls, spec.init.get("output_mult", 1.0))


def build_population(
    spec: JobSpec,
    models: list,
    loss: str,
    device: torch.device,
    strategy: str | None = None,
    sample: Tensor | None = None,
    shards: int | None = None,
    optimizer=None,
    seeds: Sequence[int] | None = None,
    scales: list[dict | None] | None = None,
    facts: ModelFacts | None = None,
    tokens: bool = False,
) -> Population:
    """The copies ``models`` on ``device``: one stacked population where the model allows it
    (``sample``, a couple of inputs on ``device``, tries a stacked forward), split into
    ``shards`` blocks on the CPU (``None``: ``trainer.shards``, else one per thread).

    A job's copies by default (``facts``, the models' widths, give μP's per-parameter learning
    rates under ``init=mup``); a group's (:mod:`initsweep.job.runner`) with ``optimizer``, one
    partial per copy, ``seeds``, each copy's (its dropout stream), and ``scales``, each copy's
    :func:`optimizer_scales`; ``spec``, the group's first job, gives the trainer settings they
    share. ``tokens``: the targets are per token (task tokens)."""
    t = spec.trainer
    if optimizer is None:
        optimizer = build(spec.optimizer, "optimizer", spec.targets)
        scales = [optimizer_scales(spec, facts, optimizer)] * len(models)
    return make_population(
        [m.to(device) for m in models],
        optimizer,
        loss_fn(loss, t.huber_delta, tokens),
        dropout_seeds=[param_generator(s, "dropout").initial_seed() for s in seeds or spec.seeds],
        strategy=str(strategy or t.strategy),
        amp=t.amp,
        compile=t.compile,
        sample=sample,
        shards=shards or t.shards,
        scales=scales,
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
        data_order=str(t.data_order),
    )


def make_trackers(spec: JobSpec, bundle: DataBundle, first_step: int = 0) -> Trackers:
    """The files tracker always, then every ``_target_`` node under ``tracker`` in config order
    (``tracker=wandb``: one W&B run per seed; ``tracker=[wandb,tensorboard]``: both), each built
    as lightning-hydra-template's ``instantiate_loggers`` builds loggers: a partial of its class
    from its yaml, called with the job (:class:`~initsweep.track.base.TrackedJob`).

    ``first_step`` is the first step the job will log (after a resumed checkpoint's step).
    A tracker that fails to start closes those started before it.
    """
    t, seeds, out = spec.tracker, tuple(spec.seeds), spec.output_dir
    probe = bundle.x_train[: t.probe_size].to(bundle.y_train.device)  # streamed data: read it
    hist = Histogrammer(t.histogram_every, probe, t.gradients)
    trackers: list[Tracker] = [FilesTracker(out, list(seeds), hist)]
    nodes = {k: v for k, v in spec.config["tracker"].items() if isinstance(v, dict)}
    if not nodes:
        return Trackers(trackers)
    job = TrackedJob(
        out,
        seeds,
        spec.runs,
        config=spec.config,
        metrics=tuple(sorted(METRIC_KEYS[bundle.task])),
        tags=spec.tags,
        histograms=hist,
        first_step=first_step,
    )
    try:
        for key, node in nodes.items():
            make = build({**node, "_partial_": True}, f"tracker.{key}", spec.tracker_targets)
            trackers.append(make(job))
    except BaseException:
        Trackers(trackers).finish("failed")
        raise
    return Trackers(trackers)
