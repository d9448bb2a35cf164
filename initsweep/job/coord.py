"""``initsweep-probe coord_check=on``: the coordinate check of a job's model over widths.

The job as configured (data, init, optimizer, seeds), built at each of ``coord_check.widths``
through its model's ``width_key`` and trained ``coord_check.steps`` steps on the first batches
of its data order, sequentially (each copy a plain module, hooked); the measurement and its
table are :mod:`initsweep.diagnostics.coord_check`'s. Writes ``coord_check.json``.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
from collections.abc import Sequence

from initsweep.diagnostics.coord_check import format_coord_check, layer_types, record, summarize
from initsweep.errors import ConfigError, invalid, unknown_key
from initsweep.files import write_json_atomic
from initsweep.init.widths import HOW_TO_DECLARE
from initsweep.job.build import (
    build_data,
    build_models,
    build_population,
    model_factory,
    resolve_device,
    set_determinism,
)
from initsweep.job.spec import JobSpec
from initsweep.train.order import batch_order, epoch_batches

COORD_CHECK = "coord_check.json"
KEYS = ("widths", "steps")


def settings(spec: JobSpec) -> tuple[list[int], int]:
    """``coord_check.widths`` and ``coord_check.steps``, checked."""
    node = spec.config.get("coord_check") or {}
    for key in node:
        if key not in KEYS:
            raise unknown_key(f"coord_check.{key}", node[key], KEYS)
    widths, steps = node.get("widths"), node.get("steps")
    ok = (
        isinstance(widths, list)
        and len(widths) >= 2
        and all(isinstance(w, int) and w >= 1 for w in widths)
    )
    if not ok:
        raise invalid("coord_check.widths", widths, "give at least two integer widths, e.g. "
                      "'[64,128,256,512,1024]'")  # fmt: skip
    if not (isinstance(steps, int) and steps >= 1):
        raise invalid("coord_check.steps", steps, "must be an integer >= 1")
    return sorted(set(widths)), steps


def _at(value, width: int):
    """The width key's value for ``width``: a list (an MLP's hidden) gets it in every entry."""
    listed = isinstance(value, Sequence) and not isinstance(value, str)
    return [width] * len(value) if listed else width


def coord_check_job(spec: JobSpec) -> float:
    """Record, print and write the coordinate check; return the mean slope of the logits' log
    RMS in log width at the last step (0: flat in width)."""
    widths, steps = settings(spec)
    set_determinism(spec.trainer.deterministic)
    device = resolve_device(spec.trainer.device)
    bundle, loss = build_data(spec)
    make_model, declared = model_factory(spec.model, spec.targets)
    key = declared.get("width_key") or getattr(make_model.func, "width_key", None)
    if key is None:
        raise ConfigError(f"coord_check varies the model's width: {HOW_TO_DECLARE}")
    current = make_model.keywords.get(key)
    order = batch_order(len(bundle.y_train), spec.trainer.data_seed, 1)
    batches = list(
        itertools.islice(epoch_batches(bundle, order, spec.trainer.batch_size), steps + 1)
    )
    batches = [(x.to(device), y.to(device)) for x, y in batches]
    rows = []
    for width in widths:
        model = {**spec.model, key: _at(current, width)}
        at = dataclasses.replace(spec, model=model)
        models, _, facts = build_models(at, bundle, loss, base_width=widths[0])
        pop = build_population(
            at, models, loss, device, "sequential", facts=facts, tokens=bundle.task == "tokens"
        )
        rows += record(pop, layer_types(facts.widths), batches, spec.seeds, width)
    data = summarize(rows)
    spec.output_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(spec.output_dir / COORD_CHECK, data)
    print(format_coord_check(data))
    print(f"\n{COORD_CHECK}: {spec.output_dir / COORD_CHECK}")
    last = data["slopes"].get("output", {}).get(str(steps), {})
    return statistics.fmean(last.values()) if last else float("nan")
