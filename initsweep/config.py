"""The config module: where the config tree lives, its typed schemas, what each key means, and
what configs may build.

Hydra rejects a wrong type, an unknown key or an unknown value of an enum-like key (``init.mode``,
``trainer.strategy``, ``bias.output``, ``tracker.wandb.mode``, ...) at compose time through these
schemas, with its own message listing the valid values. Range and relation checks need the whole
job and run when the job spec is built (:mod:`initsweep.job.spec`).

Nothing here is a hand-kept list: the bias rules' values come from the bias registry, the
trackers' schemas from the tracker yamls' ``_target_`` classes, the key lists (``VOLATILE``,
``PER_JOB``, ...) from the schemas' field meanings (:mod:`initsweep.schema`), and the allow-lists
from the ``_target_``s the shipped configs name (:func:`initsweep.targets.shipped_targets`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from initsweep.choice import make_choice
from initsweep.init import list_bias_rules, list_schemes, scheme_schema
from initsweep.schema import OptimizerNumbers, SearchConfig, key, keys_where
from initsweep.signature import target_schema
from initsweep.summary import ON_DIVERGE
from initsweep.targets import shipped_targets
from initsweep.train.metrics import LOSSES
from initsweep.train.order import DATA_ORDERS
from initsweep.train.population import STRATEGIES

# the primary config dir, shipped in the package
CONF_DIR = Path(__file__).resolve().parent / "conf"
SHIPPED = shipped_targets(CONF_DIR)  # (key, _target_) of every node the shipped configs build

Strategy = make_choice("Strategy", STRATEGIES, __name__)
DataOrder = make_choice("DataOrder", DATA_ORDERS, __name__)
OnDiverge = make_choice("OnDiverge", ON_DIVERGE, __name__)
Loss = make_choice(
    "Loss", ["auto", *dict.fromkeys(n for ls in LOSSES.values() for n in ls)], __name__
)
# the bias registry's rules: a new rule (a function and its yaml) is a valid value at once
OutputBias = make_choice("OutputBias", list_bias_rules("output"), __name__)
HiddenBias = make_choice("HiddenBias", list_bias_rules("hidden"), __name__)


@dataclass
class TrainerConfig:
    epochs: int = 5
    batch_size: int = 64
    device: str = key("auto", volatile=True)  # auto: CUDA if available, else CPU
    data_seed: int = 0  # seeds the data order (shuffled each epoch)
    # shared: every seed sees the same batches, so seeds differ only in init and dropout;
    # per_seed: each seed shuffles on its own, so their spread includes data-order variance
    data_order: DataOrder = DataOrder.shared
    log_every: int = 10  # steps between train/loss points
    loss: Loss = Loss.auto  # auto: cross_entropy, bce or mse by task
    huber_delta: float = 1.0
    eval_batch_size: int = key(4096, volatile=True)
    strategy: Strategy = Strategy.auto  # how the seeds' copies train
    # CPU: the stacked copies are split into this many blocks, each stepped by a single-thread
    # worker; null: one per torch thread (so it follows the launcher). The numbers depend on it
    shards: Optional[int] = None  # noqa: UP045 (OmegaConf)
    amp: bool = True  # CUDA only: bf16 autocast of the training step (the CPU trains in fp32)
    compile: bool = False  # torch.compile the stacked step (measured slower on the 2-core CPU)
    progress: bool = key(True, volatile=True, per_job=True)
    # when checkpoint.pt is written (and always after the last epoch): a whole number of epochs
    # (1: each epoch) or of seconds (60s); by time, its cost does not grow with the epochs
    checkpoint_every: str = key("60s", volatile=True)  # when the state is saved, not what it is
    # PyTorch's deterministic algorithms: bit-identical GPU runs, at some speed cost (CPU runs
    # are deterministic already)
    deterministic: bool = False
    # how diverged seeds enter the objective, and a diverged seed's value under penalize: what a
    # job makes of its copies' numbers, so the jobs of one population may differ in them
    on_diverge: OnDiverge = key(OnDiverge.ignore, per_job=True)
    diverge_penalty: float | None = key(None, per_job=True)  # a diverged seed's value (penalize)


@dataclass
class BiasConfig:
    name: str = "zeros"
    hidden: HiddenBias = HiddenBias.zeros  # a hidden bias rule (bias registry, kind hidden)
    hidden_value: float = 0.0  # for hidden=constant, e.g. 0.1 for ReLU units
    output: OutputBias = OutputBias.zeros  # an output bias rule (bias registry, kind output)
    value: float = 0.0  # for output=constant
    forget_gate: Optional[float] = None  # noqa: UP045 (OmegaConf)  # LSTM effective forget bias (1, 2); null: bias.hidden's


@dataclass
class TrackerSettings:
    """``tracker``: the settings every tracker shares; each option of the ``tracker`` group fills
    one more key, ``tracker.<name>`` (a list turns on several: ``tracker=[wandb,tensorboard]``).
    The files tracker is always on."""

    histogram_every: int = 1  # epochs between weight/activation histograms (0: at init only)
    probe_size: int = 256  # training samples in the fixed batch whose activations are histogrammed
    gradients: bool = False  # also each weight's gradient norm and histogram, from epoch 1 on


def _tracker_fields() -> list[tuple[str, Any, Any]]:
    """One optional key per shipped tracker (``tracker/<name>.yaml`` fills ``tracker.<name>``
    with a ``_target_`` node), typed from its class (:func:`initsweep.signature.target_schema`)."""
    found = []
    for where, target in SHIPPED:
        name = where.removeprefix("tracker.").removesuffix("._target_")
        if where.startswith("tracker.") and "." not in name:
            title = "".join(p.title() for p in name.split("_")) + "TrackerConfig"
            schema = globals()[title] = target_schema(target, title, __name__)
            found.append((name, Optional[schema], field(default=None)))  # noqa: UP045
    return found


TrackerConfig = make_dataclass(
    "TrackerConfig",
    _tracker_fields(),
    bases=(TrackerSettings,),
    namespace={"__module__": __name__},
)


@dataclass
class CoordCheckConfig:
    widths: list[int] = field(default_factory=lambda: [64, 128, 256, 512, 1024])
    steps: int = 5  # training steps on the data order's first batches (step 0: init)


@dataclass
class JobConfig:
    """The composed ``train.yaml``: each top-level key, its type and what it means
    (:mod:`initsweep.schema`). The groups' own schemas type the nodes under them."""

    dataset: Any = None
    model: Any = None
    optimizer: Any = key(None, parts=OptimizerNumbers)
    init: Any = key(None, per_job=True)
    bias: BiasConfig = key(factory=BiasConfig, per_job=True)
    trainer: TrainerConfig = key(factory=TrainerConfig)
    tracker: TrackerConfig = key(factory=TrackerConfig, volatile=True, per_job=True)
    name: str = key(per_job=True, arm=False, names_file=True)  # the study's name
    tags: Any = key(factory=list, volatile=True)  # words for W&B, summary.json, the report
    seeds: list[int] = key(per_job=True, arm=False)  # one model copy per seed: runs of one arm
    objective: str = key(per_job=True)  # the metric returned to Hydra and Optuna
    allow_targets: Any = key(factory=list, volatile=True)  # what a config may build, not compute
    report: Any = key(None, volatile=True)  # read by initsweep-report only
    paths: Any = key(None, volatile=True, per_job=True)  # where a job reads and writes
    # the launcher's (a job may resume on another cluster or locally); a dict, not None, so
    # that this schema, merged after hydra/launcher=slurm, keeps what that config set
    resources: Any = key(factory=dict, volatile=True)
    search: Optional[SearchConfig] = key(None, per_job=True, arm=False)  # noqa: UP045
    arm: Any = None  # arm=<name>: a named arm that sets several keys at once (conf/arm/)
    # initsweep-probe coord_check=on: widths and steps of the coordinate check (initsweep.job.coord)
    coord_check: Optional[CoordCheckConfig] = None  # noqa: UP045


# --- the key lists, derived from the meanings above (see initsweep.schema)
VOLATILE = keys_where(JobConfig, "volatile")  # a resumed job may change them
PER_JOB = keys_where(JobConfig, "per_job")  # may differ between the jobs of one population
# never tell two arms apart; Hydra's own node (launcher, sweeper) has no schema of ours
NOT_ARM = (*keys_where(JobConfig, "arm", False), "hydra")
FILE_NAMES = keys_where(JobConfig, "names_file")  # name files: plain names only

# --- what configs may build (initsweep.targets): what the shipped configs name, by full name
LIBRARY = [  # torch's and torchvision's own, which a config may use without allow_targets
    "torch.optim.*",
    "torch.nn.*",
    "torchvision.models.*",
    # a torch Dataset through dataset=torch_dataset: torchvision's own sets and tensor transforms
    *(f"torchvision.datasets.{n}" for n in ("FakeData", "MNIST", "FashionMNIST", "CIFAR10")),
    *(f"torchvision.datasets.{n}" for n in ("CIFAR100", "ImageFolder")),
    *(f"torchvision.transforms.{n}" for n in ("ToTensor", "Normalize", "Compose")),
]


def _shipped(*under: str) -> list[str]:
    return list(dict.fromkeys(t for where, t in SHIPPED if where.startswith(under)))


TARGETS = [
    *_shipped("dataset.", "model.", "optimizer."),
    *LIBRARY,
]  # a job's data, model, optimizer
TRACKER_TARGETS = _shipped("tracker.")  # the job's trackers
# what Hydra itself builds from config besides its plugins (the launchers and sweepers, which
# it allows by their own class) and its logging handlers: our callbacks, nothing by package
HYDRA_TARGETS = _shipped("hydra.callbacks.")


def register_configs() -> None:
    """Store the schemas as ``schema/job`` (the root, placed first by ``train.yaml``),
    ``schema/trainer``, ``schema/bias`` and ``schema/init/<scheme>``.

    A yaml option extends its schema with ``defaults: [/schema/init/<scheme>@_here_, _self_]``;
    keeping schemas out of the ``init`` group keeps them out of the options Hydra lists. The
    root schema types ``tracker`` itself: its options may be a list, and each would otherwise
    reset the keys the one before it filled.
    """
    cs = ConfigStore.instance()
    cs.store(group="schema", name="job", node=JobConfig)
    cs.store(group="schema", name="trainer", node=TrainerConfig)
    cs.store(group="schema", name="bias", node=BiasConfig)
    for name in list_schemes():
        cs.store(group="schema/init", name=name, node=scheme_schema(name))


register_configs()  # importing the config module makes its schemas known to Hydra
