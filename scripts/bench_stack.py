"""scripts/bench.py's "stacked against sequential" table, and what ``trainer.strategy=auto`` picks.

For the models whose copies ``auto`` may stack through ``vmap`` (cnn, resnet18,
efficientnet_b0), each row sets (c), every copy in one vmapped step, against (b), the copies one
after another, at M = 1, 4 and 10: the median of (c)/(b) within each round, which is faster, and
which population ``auto`` builds on this device for that model and M
(``initsweep/train/strategy.py``). A row where ``auto`` picks the slower one says DISAGREES:
update ``CPU_STACK_SPEEDUP`` there from this table.
"""

from __future__ import annotations

import torch

from initsweep.train.strategy import vectorize_unsupported


def auto_pick(make, copies: int, device: torch.device) -> str:
    """The population ``auto`` builds for ``copies`` of ``make()`` on ``device`` (without the
    trial step: these models pass it)."""
    why = vectorize_unsupported(make(), device, explicit=False, copies=copies)
    return "stacked" if why is None else "sequential"


def stack_rows(rows: list[dict], makes: dict, device: torch.device) -> list[dict]:
    """One row per (model, M) of ``makes`` with both (b) and (c) timed."""
    got = {(r["model"], r["m"], r["variant"]): r for r in rows}
    out = []
    for (model, m, variant), c in got.items():
        if variant != "c" or model not in makes or (model, m, "b") not in got:
            continue
        speedup = c["ratio_vs_b"]
        faster = "stacked" if speedup > 1 else "sequential"
        auto = auto_pick(makes[model], m, device)
        out.append(
            {
                "model": model,
                "m": m,
                "sequential": got[model, m, "b"]["samples_per_s"],
                "stacked": c["samples_per_s"],
                "speedup": speedup,
                "faster": faster,
                "auto": auto,
                "agrees": auto == faster,
            }
        )
    return out


def stack_table(rows: list[dict]) -> str:
    lines = [
        "| model | M | (b) sequential samples/s | (c) stacked samples/s | (c)/(b) | faster "
        "| auto picks |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        verdict = "" if r["agrees"] else " (DISAGREES)"
        lines.append(
            f"| {r['model']} | {r['m']} | {r['sequential']:,.0f} | {r['stacked']:,.0f} "
            f"| {r['speedup']:.2f}x | {r['faster']} | {r['auto']}{verdict} |"
        )
    return "\n".join(lines)
