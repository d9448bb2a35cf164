"""``initsweep-probe``: build the models of a job, initialise them, and show the step-0 diagnostics.

The same config tree and the same code path as ``initsweep-train`` up to step 0 (data, one model
per seed, init, population, ``step0_report``), then it prints the per-layer table and writes
``init.json`` to the job's output directory, without training:

    initsweep-probe model=mlp init=xavier_uniform bias=prior seeds='[0,1,2]'
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from initsweep.cli import build, build_models, build_population, loop_config, resolve_device
from initsweep.config import validate
from initsweep.diagnostics import step0_report
from initsweep.diagnostics.table import format_layers
from initsweep.track.files import write_json_atomic
from initsweep.train.metrics import resolve_loss


def probe(cfg: DictConfig) -> float:
    """Initialise one model per seed, write ``init.json``, print the table; return the mean excess."""
    validate(cfg)
    out = Path(cfg.paths.output_dir)
    device = resolve_device(cfg.trainer.device)
    bundle = build(cfg.dataset)
    loss = resolve_loss(bundle.task, cfg.trainer.loss)
    models, assignments = build_models(cfg, bundle, loss)
    bundle = bundle.to(device)
    pop = build_population(cfg, models, loss, device, strategy="sequential")  # plain modules
    report = step0_report(
        pop, bundle, loop_config(cfg.trainer, loss), list(cfg.seeds), assignments
    )
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "init.json", report)  # the same file a training job writes at step 0
    print(format_layers(report))
    print(f"\ninit.json: {out / 'init.json'}")
    return sum(s["excess"] for s in report["seeds"]) / len(report["seeds"])
