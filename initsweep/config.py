"""The config module: where the config tree lives, its typed schemas, and what configs may build.

Hydra rejects a wrong type, an unknown key or an unknown value of an enum-like key (``init.mode``,
``trainer.strategy``, ``trainer.loss``, ...) at compose time through these schemas, with its own
message listing the valid values. Range and relation checks need the whole job and run when the
job spec is built (:mod:`initsweep.job.spec`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from hydra.core.config_store import ConfigStore

from initsweep.choice import make_choice
from initsweep.init import list_schemes, scheme_schema
from initsweep.summary import ON_DIVERGE
from initsweep.track.wandb import MODES
from initsweep.train.metrics import LOSSES
from initsweep.train.order import DATA_ORDERS
from initsweep.train.population import STRATEGIES

# the primary config dir, shipped in the package
CONF_DIR = Path(__file__).resolve().parent / "conf"

# configs are code (initsweep.targets): what a job's dataset, model and optimizer may build, by
# full name; torch's optimizer and module classes by package. allow_targets adds the user's own.
DATASETS = [
    *(f"initsweep.data.embedded.{n}" for n in ("digits", "breast_cancer", "wine", "iris")),
    *(f"initsweep.data.embedded.{n}" for n in ("diabetes", "synthetic", "adding")),
    *(f"initsweep.data.vision.{n}" for n in ("mnist", "fashion_mnist", "cifar10", "cifar100")),
    "initsweep.data.files.load",
    "initsweep.data.files.torch_dataset",
    # a torch Dataset through dataset=torch_dataset: torchvision's own sets and tensor transforms
    *(f"torchvision.datasets.{n}" for n in ("FakeData", "MNIST", "FashionMNIST", "CIFAR10")),
    *(f"torchvision.datasets.{n}" for n in ("CIFAR100", "ImageFolder")),
    *(f"torchvision.transforms.{n}" for n in ("ToTensor", "Normalize", "Compose")),
]
MODELS = [  # the factories and the classes they return (Hydra checks both)
    *(f"initsweep.models.{n}" for n in ("MLP", "DeepMLP", "CNN", "LSTMNet", "TorchvisionNet")),
    *(f"initsweep.models.{n}" for n in ("resnet18", "efficientnet_b0", "efficientnet_b1")),
]
TARGETS = [*DATASETS, *MODELS, "torch.optim.*", "torch.nn.*", "torchvision.models.*"]
# what Hydra itself builds from config besides its plugins (the launchers and sweepers, which
# it allows by their own class) and its logging handlers: our callback, nothing by package
HYDRA_TARGETS = ["initsweep.cli.OutputDirCheck"]

Strategy = make_choice("Strategy", STRATEGIES, __name__)
DataOrder = make_choice("DataOrder", DATA_ORDERS, __name__)
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
    data_seed: int = 0  # seeds the data order (shuffled each epoch)
    # shared: every seed sees the same batches, so seeds differ only in init and dropout;
    # per_seed: each seed shuffles on its own, so their spread includes data-order variance
    data_order: DataOrder = DataOrder.shared
    log_every: int = 10  # steps between train/loss points
    loss: Loss = Loss.auto  # auto: cross_entropy, bce or mse by task
    huber_delta: float = 1.0
    eval_batch_size: int = 4096
    strategy: Strategy = Strategy.auto  # how the seeds' copies train
    # CPU: the stacked copies are split into this many blocks, each stepped by a single-thread
    # worker; null: one per torch thread (so it follows the launcher). The numbers depend on it
    shards: Optional[int] = None  # noqa: UP045 (OmegaConf)
    amp: bool = True  # CUDA only: bf16 autocast of the training step (the CPU trains in fp32)
    compile: bool = False  # torch.compile the stacked step (measured slower on the 2-core CPU)
    progress: bool = True
    # when checkpoint.pt is written (and always after the last epoch): a whole number of epochs
    # (1: each epoch) or of seconds (60s); by time, its cost does not grow with the epochs
    checkpoint_every: str = "60s"
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
class WandbConfig:
    project: str = "initsweep"
    entity: str | None = None  # W&B user or team (online only)
    mode: TrackerMode = TrackerMode.offline


@dataclass
class TensorBoardConfig:
    flush_secs: int = 30  # seconds between writes of the event files


@dataclass
class TrackerConfig:
    """``tracker``: the settings every tracker shares, and one key per tracker that is on.

    Each option of the ``tracker`` group fills its own key (``tracker=wandb`` sets
    ``tracker.wandb``), so a list of options (``tracker=[wandb,tensorboard]``) turns on several;
    the files tracker is always on.
    """

    histogram_every: int = 1  # epochs between weight/activation histograms (0: at init only)
    probe_size: int = 256  # training samples in the fixed batch whose activations are histogrammed
    gradients: bool = False  # also each weight's gradient norm and histogram, from epoch 1 on
    wandb: Optional[WandbConfig] = None  # noqa: UP045 (OmegaConf)
    tensorboard: Optional[TensorBoardConfig] = None  # noqa: UP045 (OmegaConf)


def register_configs() -> None:
    """Store the schemas as ``schema/trainer``, ``schema/bias``, ``schema/tracker`` and
    ``schema/init/<scheme>``.

    A yaml option extends its schema with ``defaults: [/schema/init/<scheme>@_here_, _self_]``;
    keeping schemas out of the ``init`` group keeps them out of the options Hydra lists.
    ``schema/tracker`` is placed once by ``train.yaml`` (the ``tracker`` options may be a list,
    and each would otherwise reset the keys the one before it filled).
    """
    cs = ConfigStore.instance()
    cs.store(group="schema", name="trainer", node=TrainerConfig)
    cs.store(group="schema", name="bias", node=BiasConfig)
    cs.store(group="schema", name="tracker", node=TrackerConfig)
    for name in list_schemes():
        cs.store(group="schema/init", name=name, node=scheme_schema(name))


register_configs()  # importing the config module makes its schemas known to Hydra
