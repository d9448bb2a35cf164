"""initsweep as a library, for researchers who keep their own training loop.

In the manner of ``torch.nn.init`` and timm: one call initialises a model in place with a weight
scheme and a bias rule, seeded per parameter, and returns which parameter got what::

    import initsweep

    model = MyNet()
    initsweep.initialize(model, scheme="kaiming_normal", bias="median", targets=y_train, seed=0)
    initsweep.expected_loss_at_init(model, y_train, loss="mae")  # = mean |y - median(y)|

The same library the CLI runs (:mod:`initsweep.init`): every scheme of ``init=...`` and every
rule of ``bias=...``, per-layer ``rules``, and the model facts (activation, output layer)
declared, read off the model, or found on one forward pass of ``x``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from initsweep.data.bundle import DataBundle
from initsweep.data.files import infer_task
from initsweep.diagnostics.loss_at_init import expected_loss
from initsweep.init import BiasContext, model_facts
from initsweep.init import initialize as _initialize
from initsweep.train.metrics import resolve_loss

__all__ = ["expected_loss_at_init", "initialize"]


def _targets(targets: Tensor | Any, task: str | None) -> tuple[Tensor, str, Tensor | None]:
    """The targets as a tensor, the task, and the class prior (classification)."""
    y = torch.as_tensor(targets).reshape(-1)
    task = task or infer_task(y)
    if task == "regression":
        return y.double(), task, None
    y = y.long() if task == "multiclass" else y.double()
    classes = int(y.max()) + 1 if task == "multiclass" else None
    return y, task, DataBundle("targets", task, y[:, None], y, y[:, None], y, classes).class_prior


def initialize(
    model: nn.Module,
    scheme: str = "kaiming_normal",
    bias: str = "zeros",
    *,
    targets: Tensor | None = None,
    task: str | None = None,
    loss: str = "auto",
    seed: int = 0,
    x: Tensor | None = None,
    rules: list[dict] | None = None,
    hidden_bias: str = "zeros",
    output_layer: str | None = None,
    activation: str | None = None,
    huber_delta: float = 1.0,
    **params: Any,
) -> list[dict[str, Any]]:
    """Initialise ``model`` in place; return the assignment (one entry per parameter).

    :param scheme: a weight scheme (``initsweep.init.list_schemes()``); its parameters as
        keywords (``gain=1.0``, ``mode="fan_out"``, ``scale=...``).
    :param bias: the output layer's bias rule (``zeros``, ``prior``, ``mean``, ``median``,
        ``huber``, ...); rules that need data read ``targets`` (the training targets).
    :param task: ``multiclass``, ``binary`` or ``regression``; by default inferred from
        ``targets`` (floats: regression; 0/1: binary; 0..C-1: multiclass).
    :param loss: the training loss, for rules that depend on it (``auto``: by task).
    :param seed: every draw is seeded from (seed, parameter name).
    :param x: a batch of training inputs: for data-dependent schemes (LSUV) and to find the
        output layer when the model does not name it (``output_layer``).
    :param rules: per-layer rules, as ``init.rules`` (``{pattern|module, scheme, params}``).
    :param hidden_bias: the rule for every other bias (``zeros``, ``constant``, ``default``).
    :param activation: the activation whose gain ``gain="act"`` takes, if the model does not say.
    """
    y, prior = None, None
    if targets is not None:
        y, task, prior = _targets(targets, task)
    task = task or "multiclass"  # without targets: only data-free rules (zeros, constant)
    loss = resolve_loss(task, loss)
    declared = {"output_layer": output_layer, "activation": activation}
    facts = model_facts(model, declared, None if x is None else x[:2])
    ctx = BiasContext(task, prior, y, loss, huber_delta=huber_delta)
    init = {"name": scheme, **params, "rules": list(rules or [])}
    return _initialize(
        model, init, {"hidden": hidden_bias, "output": bias}, ctx, seed, x, facts=facts
    )


def expected_loss_at_init(
    model: nn.Module,
    targets: Tensor,
    loss: str = "auto",
    *,
    task: str | None = None,
    output_layer: str | None = None,
    x: Tensor | None = None,
    huber_delta: float = 1.0,
) -> float:
    """The loss of predicting the output layer's bias for every target: the model's loss at
    init when its output weights are 0 (Var(y) under MSE at the mean bias, H(prior) under
    cross-entropy at the prior bias, ...). Compare with the measured loss on ``x``."""
    y, task, _ = _targets(targets, task)
    loss = resolve_loss(task, loss)
    facts = model_facts(model, {"output_layer": output_layer}, None if x is None else x[:2])
    bundle = DataBundle("targets", task, y[:, None], y, y[:, None], y, None)
    return expected_loss(model, bundle, loss, huber_delta, facts.output_layer)
