"""Structured configs (typed schemas in Hydra's ConfigStore) and the checks compose cannot do.

Hydra rejects a wrong type or an unknown key at compose time through these schemas; ``validate``
then checks ranges and relations, raising :class:`ConfigError` with the key, value and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from initsweep.errors import invalid
from initsweep.init import list_schemes, scheme_schema
from initsweep.summary import ON_DIVERGE
from initsweep.train.metrics import METRIC_KEYS


@dataclass
class TrainerConfig:
    epochs: int = 5
    batch_size: int = 64
    device: str = "auto"  # auto: CUDA if available, else CPU
    data_seed: int = 0  # one data order shared by all seeds: they differ only in init and dropout
    log_every: int = 10  # steps between train/loss points
    loss: str = "auto"  # auto | cross_entropy | bce | mse | mae | huber | gaussian_nll
    huber_delta: float = 1.0
    eval_batch_size: int = 4096
    strategy: str = "auto"  # auto | vectorized | sequential (how the seeds' copies train)
    amp: bool = True  # CUDA only: bf16 autocast of the training step (the CPU trains in fp32)
    compile: bool = False  # torch.compile the stacked step (measured slower on the 2-core CPU)
    progress: bool = True
    # PyTorch's deterministic algorithms: bit-identical GPU runs, at some speed cost (CPU runs
    # are deterministic already)
    deterministic: bool = False
    on_diverge: str = "ignore"  # ignore | penalize | fail: how diverged seeds enter the objective
    diverge_penalty: float | None = None  # the objective value of a diverged seed (penalize)


@dataclass
class BiasConfig:
    name: str = "zeros"
    hidden: str = "zeros"  # zeros | constant | default (PyTorch's U(+-1/sqrt(fan_in)))
    hidden_value: float = 0.0  # for hidden=constant, e.g. 0.1 for ReLU units
    # a bias rule: zeros | constant | prior | mean | median | huber | gaussian | pytorch_default
    output: str = "zeros"
    value: float = 0.0  # for output=constant
    forget_gate: Optional[float] = None  # noqa: UP045 (OmegaConf)  # LSTM effective forget bias (1, 2); null: bias.hidden's


@dataclass
class TrackerConfig:
    name: str = "files"
    histogram_every: int = 1  # epochs between weight/activation histograms (0: at init only)
    probe_size: int = 256  # training samples in the fixed batch whose activations are histogrammed


@dataclass
class WandbConfig(TrackerConfig):
    name: str = "wandb"
    project: str = "initsweep"
    entity: str | None = None  # W&B user or team (online only)
    mode: str = "offline"  # offline | online | disabled
    tags: list[str] = field(default_factory=list)


def register_configs() -> None:
    """Store the schemas as ``schema/trainer``, ``schema/bias`` and ``schema/init/<scheme>``.

    A yaml option extends its schema with ``defaults: [/schema/init/<scheme>@_here_, _self_]``;
    keeping schemas out of the ``init`` group keeps them out of the options Hydra lists.
    """
    cs = ConfigStore.instance()
    cs.store(group="schema", name="trainer", node=TrainerConfig)
    cs.store(group="schema", name="bias", node=BiasConfig)
    cs.store(group="schema/tracker", name="files", node=TrackerConfig)
    cs.store(group="schema/tracker", name="wandb", node=WandbConfig)
    for name in list_schemes():
        cs.store(group="schema/init", name=name, node=scheme_schema(name))


def _check(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise invalid(key, value, allowed)


def validate(cfg: DictConfig) -> None:
    """Range and relation checks on a composed config (types were checked by the schemas)."""
    seeds = list(cfg.seeds)
    _check(len(seeds) > 0, "seeds", seeds, "give at least one seed, e.g. seeds='[0,1,2]'")
    _check(all(isinstance(s, int) for s in seeds), "seeds", seeds, "seeds must be integers")
    _check(len(set(seeds)) == len(seeds), "seeds", seeds, "seeds must not repeat")
    t = cfg.trainer
    _check(t.epochs >= 1, "trainer.epochs", t.epochs, "must be >= 1")
    _check(t.batch_size >= 1, "trainer.batch_size", t.batch_size, "must be >= 1")
    _check(t.log_every >= 1, "trainer.log_every", t.log_every, "must be >= 1")
    _check(
        t.strategy in ("auto", "vectorized", "sequential"),
        "trainer.strategy",
        t.strategy,
        "use one of auto, vectorized, sequential",
    )
    _check(
        t.on_diverge in ON_DIVERGE,
        "trainer.on_diverge",
        t.on_diverge,
        f"use one of {', '.join(ON_DIVERGE)}",
    )
    if t.on_diverge == "penalize":
        penalty = t.diverge_penalty
        ok = penalty is not None and math.isfinite(penalty)
        _check(ok, "trainer.diverge_penalty", penalty, "on_diverge=penalize needs a finite number")
    lr = cfg.optimizer.get("lr")
    _check(
        lr is not None and lr > 0 and math.isfinite(lr), "optimizer.lr", lr, "must be a number > 0"
    )
    dropout = cfg.model.get("dropout", 0.0)
    _check(0.0 <= dropout < 1.0, "model.dropout", dropout, "must be in [0, 1)")
    allowed = sorted(set().union(*METRIC_KEYS.values()))
    _check(
        cfg.objective in allowed, "objective", cfg.objective, f"use one of {', '.join(allowed)}"
    )
