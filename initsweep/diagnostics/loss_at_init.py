"""Loss at init: what theory expects from the output bias, next to what each copy measures.

With the output layer's weights at zero, a network predicts its output bias b for every input,
so the expected loss at init is exactly the loss of the constant prediction b on the training
targets: ln C for a zero softmax bias, H(prior) for the prior bias, Var(y) for MSE at the mean.
Random output weights add to it; that excess is reported as a diagnostic, not a failure.
"""

from __future__ import annotations

import torch
from torch import nn

from initsweep.data import DataBundle
from initsweep.diagnostics.layers import layer_report
from initsweep.errors import ConfigError
from initsweep.init.bias import best_constant_losses, huber_optimum, target_median
from initsweep.init.model import ModelFacts, model_facts
from initsweep.train.metrics import loss_fn

DIAG_BATCH = 256  # training samples of the per-layer diagnostics batch (step 0 only)


def output_bias(model: nn.Module, output_layer: str | None = None) -> torch.Tensor:
    """The output layer's bias (zeros when the layer has none)."""
    output_layer = output_layer or model_facts(model).output_layer
    if output_layer is None:
        raise ConfigError(
            f"the loss at init needs the output layer of {type(model).__name__}: declare it "
            "(model.output_layer; output_layer= in Python) or give a batch of inputs to find it"
        )
    layer = model.get_submodule(output_layer)
    if getattr(layer, "bias", None) is None:
        return torch.zeros(layer.weight.shape[0])
    return layer.bias.detach()


@torch.no_grad()
def expected_loss(
    model: nn.Module,
    bundle: DataBundle,
    loss: str,
    huber_delta: float = 1.0,
    output_layer: str | None = None,
) -> float:
    """Loss of predicting the output bias for every training sample."""
    b = output_bias(model, output_layer).double().cpu()
    y = bundle.y_train.cpu()
    # one prediction per target: per sample, or per token ([N, T] targets: a uniform LM is ln V)
    return float(loss_fn(loss, huber_delta, bundle.task == "tokens")(b.expand(*y.shape, -1), y))


def diagnostic_batch(bundle: DataBundle, data_seed: int, size: int = DIAG_BATCH):
    """The fixed training batch the per-layer diagnostics use: the same for every seed."""
    n = len(bundle.x_train)
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(data_seed))[: min(size, n)]
    device = bundle.y_train.device
    return bundle.x_train[idx.to(bundle.x_train.device)].to(device), bundle.y_train[idx.to(device)]


def step0_report(
    pop,
    bundle: DataBundle,
    cfg,
    seeds: list[int],
    assignments: list,
    facts: ModelFacts | None = None,
    measured: list[dict] | None = None,
) -> dict:
    """``init.json``: per seed, the expected and measured loss at init, the assignment, and the
    per-layer diagnostics (:func:`~initsweep.diagnostics.layers.layer_report`). ``facts``: the
    models' activation and output layer (:func:`~initsweep.init.model_facts`); ``measured``:
    each copy's train-split metrics at init, when the caller has them already."""
    from initsweep.train.loop import eval_split

    measured = measured or eval_split(pop, bundle.x_train, bundle.y_train, bundle, cfg)
    x, y = diagnostic_batch(bundle, cfg.data_seed)
    tokens = bundle.task == "tokens"
    rows = []
    for i, (seed, meas, assignment) in enumerate(zip(seeds, measured, assignments)):
        model = pop.module(i)
        facts = facts or model_facts(model)
        expected = expected_loss(model, bundle, cfg.loss, cfg.huber_delta, facts.output_layer)
        rows.append(
            {
                "seed": seed,
                "expected_loss": expected,
                "measured_loss": meas["loss"],
                "excess": meas["loss"] - expected,  # from random output weights: a diagnostic
                "assignment": assignment,
                "layers": layer_report(
                    model, x, y, cfg.loss, cfg.huber_delta, assignment, facts, tokens
                ),
            }
        )
    report = {"loss": cfg.loss, "task": bundle.task, "seeds": rows}
    if bundle.task == "regression":
        report["targets"] = target_summary(bundle.y_train, cfg.huber_delta)
    return report


def target_summary(y: torch.Tensor, huber_delta: float) -> dict[str, float]:
    """The training targets' best constants and the loss at init each one gives (the numbers
    the regression bias rules aim at: Var(y), mean |y - median|, Huber at its optimum)."""
    y = y.double().cpu()
    losses = best_constant_losses(y, huber_delta)
    return {
        "mean": float(y.mean()),
        "median": target_median(y),
        "huber_optimum": huber_optimum(y, huber_delta),
        "huber_delta": huber_delta,
        "var": losses["mse"],
        "mean_abs_dev": losses["mae"],
        "huber_at_optimum": losses["huber"],
    }
