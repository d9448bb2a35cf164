"""A population's state in a checkpoint: what fits where, and a stack's optimizer state.

A stacked population keeps its optimizer state per shard (a block of copies); the checkpoint
holds it joined along the copy dimension, keyed by parameter name, so a job resumes under any
shard count (``initsweep/train/vectorized.py``).
"""

from __future__ import annotations

import torch


def check_state_fits(state: dict, pop) -> None:
    """A checkpoint loads only into a population of its own strategy and size."""
    if state["strategy"] != pop.strategy or len(state["models"]) != len(pop):
        raise ValueError(
            f"a {state['strategy']} checkpoint of {len(state['models'])} copies cannot be "
            f"loaded into a {pop.strategy} population of {len(pop)}"
        )


def stacked_optimizer_state(optimizers: list[torch.optim.Optimizer], names: list[str]) -> dict:
    """The shards' optimizer states joined along the copy dimension, keyed by parameter name
    (``names``: the stacked parameters, in each optimizer's order)."""
    states = [o.state_dict() for o in optimizers]
    stacked = {}
    for k, name in enumerate(names):
        if k not in states[0]["state"]:
            continue
        stacked[name] = {
            key: torch.cat([st["state"][k][key] for st in states]) if v.dim() > 0 else v.clone()
            for key, v in states[0]["state"][k].items()
        }
    group = {k: v for k, v in states[0]["param_groups"][0].items() if k != "params"}
    return {"state": stacked, "param_groups": [group]}


def load_optimizer_slice(
    optimizer: torch.optim.Optimizer, names: list[str], saved: dict, start: int, stop: int
) -> None:
    """Load copies ``[start, stop)`` of :func:`stacked_optimizer_state`'s ``saved`` into one
    shard's ``optimizer``."""
    # the param groups keep the numbers this shard was built with (the checkpoint's config is
    # this job's): each shard's own per-copy and per-parameter learning rates
    sd = optimizer.state_dict()
    sd["state"] = {
        # clones: each shard owns its state (a shared ``step`` would count twice)
        k: {
            n: (v[start:stop] if v.dim() > 0 else v).clone()
            for n, v in saved["state"][name].items()
        }
        for k, name in enumerate(names)
        if name in saved["state"]
    }
    optimizer.load_state_dict(sd)
