"""The config module: where the config tree lives, its typed schemas, and what configs may build.

Hydra rejects a wrong type, an unknown key or an unknown value of an enum-like key (``init.mode``,
``trainer.strategy``, ``trainer.loss``, ...) at compose time through these schemas, with its own
message listing the valid values. Range and relation checks need the whole job and run when the
job spec is built (:mod:`initsweep.job.spec`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from hydra.core.config_store import ConfigStore

from initsweep.choice import make_choice
from initsweep.init import list_schemes, scheme_schema
from initsweep.summary import ON_DIVERGE
from initsweep.track.wandb import MODES
from initsweep.train.metrics import LOSSES
from initsweep.train.population import STRATEGIES

CONF_DIR = (
    Path(__file__).resolve().parent / "conf"
)  # the primary config dir, shipped in the package

# configs are code: only these packages may be _target_s (Hydra 1.4 execution allow-list)
TARGETS = ["initsweep.*", "torch.optim.*", "torch.nn.*", "torchvision.*"]
# what Hydra itself may build from config: our callbacks, logging handlers, sweeper/launcher parts
HYDRA_TARGETS = [*TARGETS, "logging.*", "hydra.*", "hydra_plugins.*", "optuna.*", "submitit.*"]

Strategy = make_choice("Strategy", STRATEGIES, __name__)
OnDiverge = make_choice("OnDiverge", ON_DIVERGE, __name__)
Loss = make_choice(
    "Loss", ["auto", *dict.fromkeys(n for ls in LOSSES.values() for n in ls)], __name__
)
TrackerMode = make_choice("TrackerMode", MODES, __name__)


@dataclass
class TrainerConfig:
    epochs: int = 5
    batch_size: int = 64
    device: str = "auto"  # auto: CUDA if available, else CPU
    data_seed: int = 0  # one data order shared by all seeds: they differ only in init and dropout
    log_every: int = 10  # steps between train/loss points
    loss: Loss = Loss.auto  # auto: cross_entropy, bce or mse by task
    huber_delta: float = 1.0
    eval_batch_size: int = 4096
    strategy: Strategy = Strategy.auto  # how the seeds' copies train
    amp: bool = True  # CUDA only: bf16 autocast of the training step (the CPU trains in fp32)
    compile: bool = False  # torch.compile the stacked step (measured slower on the 2-core CPU)
    progress: bool = True
    # PyTorch's deterministic algorithms: bit-identical GPU runs, at some speed cost (CPU runs
    # are deterministic already)
    deterministic: bool = False
    on_diverge: OnDiverge = OnDiverge.ignore  # how diverged seeds enter the objective
    diverge_penalty: float | None = None  # the objective value of a diverged seed (penalize)


@dataclass
class BiasConfig:
    name: str = "zeros"
    hidden: str = "zeros"  # a hidden bias rule: zeros | constant | default (PyTorch's)
    hidden_value: float = 0.0  # for hidden=constant, e.g. 0.1 for ReLU units
    # an output bias rule: zeros | constant | prior | mean | median | huber | gaussian | ...
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
    mode: TrackerMode = TrackerMode.offline
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


register_configs()  # importing the config module makes its schemas known to Hydra
