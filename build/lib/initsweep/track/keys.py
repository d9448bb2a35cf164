"""The keys a job's records go under in W&B and TensorBoard: the same in both viewers.

- every ``metrics.jsonl`` scalar under its own key (``train/loss``, ``val/acc``, ...);
- the step-0 diagnostics of ``init.json`` under ``init/`` (``init/expected_loss``,
  ``init/weight_std/body.1.weight``, ...);
- histograms under ``weights/<param>`` (weights and biases), ``activations/<layer>`` and
  ``gradients/<param>``, with ``weight_std/<param>`` and ``grad_norm/<param>`` beside them.
"""

from __future__ import annotations

import math

from initsweep.track.histograms import Histogram

SECTIONS = {
    "weight": "weights",
    "bias": "weights",
    "activation": "activations",
    "gradient": "gradients",
}


def numbers(prefix: str, row: dict) -> dict[str, float]:
    """The numbers of ``row`` (bools and strings dropped), under ``prefix/`` if given."""
    return {
        f"{prefix}/{k}" if prefix else k: float(v)
        for k, v in row.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def metric_scalars(record: dict) -> dict[str, float]:
    """One ``metrics.jsonl`` record's metrics (its ``seed`` and ``step`` are where it goes)."""
    return numbers("", {k: v for k, v in record.items() if k not in ("seed", "step")})


def init_scalars(row: dict) -> dict[str, float]:
    """One seed of ``init.json``: expected vs measured loss at init and each layer's numbers."""
    data = numbers("init", {k: row.get(k) for k in ("expected_loss", "measured_loss", "excess")})
    for layer in row.get("layers") or []:
        name = layer.get("param") or layer.get("name")
        stats = {k: v for k, v in layer.items() if k not in ("name", "param", "shape")}
        for key, value in numbers("init", stats).items():
            data[f"{key}/{name}"] = value  # init/weight_std/body.1.weight, ...
    return data


def histogram_key(h: Histogram) -> str:
    return f"{SECTIONS[h.kind]}/{h.name}"


def histogram_scalars(h: Histogram) -> dict[str, float]:
    """A weight's std, a gradient's L2 norm (over its finite entries); nothing for the rest."""
    if h.kind == "weight" and math.isfinite(h.std):
        return {f"weight_std/{h.name}": h.std}
    if h.kind == "gradient" and math.isfinite(h.std):
        return {f"grad_norm/{h.name}": math.sqrt(h.sum_squares)}
    return {}
