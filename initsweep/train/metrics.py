"""Losses and evaluation metrics per task. Everything stays on the device until logged."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from initsweep.data.bundle import IGNORE_INDEX
from initsweep.errors import ConfigError

# the metric keys a job logs, by task (``objective`` must be one of them)
METRIC_KEYS = {
    "multiclass": {"train/loss", "val/loss", "val/acc"},
    "binary": {"train/loss", "val/loss", "val/acc", "val/auc"},
    "regression": {"train/loss", "val/loss", "val/mse", "val/mae"},
    "tokens": {"train/loss", "val/loss", "val/acc"},  # per scored token
}

LOSSES = {
    "multiclass": ("cross_entropy",),
    "binary": ("bce",),
    "regression": ("mse", "mae", "huber", "gaussian_nll"),
    "tokens": ("cross_entropy",),
}


def output_units(task_outputs: int, loss: str) -> int:
    """Units of the output layer: the task's, or 2 (mean, log variance) for a Gaussian head."""
    return 2 if loss == "gaussian_nll" else task_outputs


def resolve_loss(task: str, loss: str) -> str:
    """``trainer.loss=auto`` picks cross-entropy, BCE-with-logits or MSE by task."""
    loss = str(loss)  # the config's enum value as the plain name the losses are keyed by
    if loss == "auto":
        return LOSSES[task][0]
    if loss not in LOSSES[task]:
        raise ConfigError(
            f"trainer.loss={loss!r} is invalid for a {task} task: use auto or {LOSSES[task]}"
        )
    return loss


def loss_fn(
    loss: str, huber_delta: float = 1.0, tokens: bool = False
) -> Callable[[Tensor, Tensor], Tensor]:
    """``f(output [..., N, K], target [N]) -> mean loss over N`` (leading copy dims kept; a
    target ``[M, N]`` is each of M copies' own batch).

    With ``tokens`` (task tokens) targets are ``[..., N, T]`` and outputs ``[..., N, T, K]``: the
    mean is over the scored tokens (those not :data:`IGNORE_INDEX`), as
    ``F.cross_entropy(ignore_index=-100)``.
    """

    def per_sample(out: Tensor, y: Tensor) -> Tensor:
        if loss == "cross_entropy":
            logp = out.log_softmax(-1)
            return -logp.gather(-1, y.expand(*out.shape[:-1]).unsqueeze(-1)).squeeze(-1)
        if loss == "gaussian_nll":  # a 2-unit head read as (mean, log variance)
            mu, log_var = out[..., 0], out[..., 1]
            y = y.to(out.dtype).expand_as(mu)
            # GaussianNLLLoss(full=False) with var = exp(log_var): 1/2 (log var + (y - mu)^2 / var)
            return 0.5 * (log_var + (y - mu) ** 2 * torch.exp(-log_var))
        out = out.squeeze(-1)
        y = y.to(out.dtype).expand_as(out)
        if loss == "bce":
            return F.binary_cross_entropy_with_logits(out, y, reduction="none")
        if loss == "mse":
            return (out - y) ** 2
        if loss == "mae":
            return (out - y).abs()
        return F.huber_loss(out, y, reduction="none", delta=huber_delta)

    def mean(out: Tensor, y: Tensor) -> Tensor:
        if not tokens:
            return per_sample(out, y).mean(-1)
        # weigh by the scored mask rather than index by it (no host sync per step)
        keep = y != IGNORE_INDEX
        losses = per_sample(out, y.clamp_min(0)) * keep
        return losses.sum((-2, -1)) / keep.sum((-2, -1))

    return mean


def roc_auc(score: Tensor, y: Tensor) -> Tensor:
    """ROC-AUC by the rank-sum (Mann-Whitney) formula, ties counted half; NaN with one class."""
    y = y.bool()
    n_pos, n_neg = y.sum(), (~y).sum()
    ranks = _average_ranks(score)
    return (ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _average_ranks(x: Tensor) -> Tensor:
    order = x.argsort()
    sorted_x = x[order]
    # ties share the mean of their 1-based positions
    _, inverse, counts = torch.unique_consecutive(
        sorted_x, return_inverse=True, return_counts=True
    )
    ends = counts.cumsum(0).double()
    mean_rank = ends - (counts.double() - 1) / 2
    ranks = torch.empty_like(mean_rank[inverse])
    ranks[order] = mean_rank[inverse]
    return ranks


def evaluate(
    outputs: Tensor, y: Tensor, task: str, loss: str, huber_delta: float
) -> dict[str, Tensor]:
    """Metrics of one copy's outputs ``[N, K]`` on targets ``[N]``, as 0-dim device tensors."""
    metrics = {"loss": loss_fn(loss, huber_delta, task == "tokens")(outputs, y)}
    if task == "tokens":  # the share of scored tokens predicted right
        keep = y != IGNORE_INDEX
        metrics["acc"] = ((outputs.argmax(-1) == y) & keep).double().sum() / keep.sum()
    elif task == "multiclass":
        metrics["acc"] = (outputs.argmax(-1) == y).double().mean()
    elif task == "binary":
        score = outputs.squeeze(-1)
        metrics["acc"] = ((score > 0) == y.bool()).double().mean()
        metrics["auc"] = roc_auc(score.double(), y)
    else:  # the prediction is the first unit (the mean of a Gaussian head)
        err = outputs[..., 0] - y
        metrics["mse"] = (err**2).mean()
        metrics["mae"] = err.abs().mean()
    return metrics
