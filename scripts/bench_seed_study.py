"""The seed study's shape: EfficientNet-B1 on 32x32x3 binary data, 10 seeds, stacked or not.

The studies initsweep starts from trained torchvision's EfficientNet-B1 (CIFAR-10 frog vs not
frog) from 10 seeds. This times one training step of all 10 copies, on synthetic data of that
shape (batch 128, BCE, Adam), four ways, interleaved over rounds:

  sequential        the copies one after another (SequentialPopulation)
  stacked           one vmapped step of all copies (VectorizedPopulation)
  sequential bf16   the same under torch.autocast(bfloat16) (CUDA only)
  stacked bf16      trainer.amp=true (CUDA only)

and reports samples/s, ms per step of all copies, and stacked over sequential within each round
(the GPU target: >= 5 at 10 seeds). The copies are built and their random streams drawn as a job
does (initsweep/train/functional.py, initsweep/train/draws.py).

  python scripts/bench_seed_study.py --device cuda          # about a minute on one GPU
  python scripts/bench_seed_study.py --device cpu --quick   # seconds: a smoke test
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from initsweep.models import efficientnet_b1
from initsweep.train.metrics import loss_fn
from initsweep.train.population import SequentialPopulation
from initsweep.train.vectorized import VectorizedPopulation

TARGET = 5.0  # stacked / sequential at 10 seeds, fp32 and bf16 (issue 27, GPU)


def build(stacked: bool, amp: bool, seeds: int, side: int, device: torch.device):
    """One population of ``seeds`` EfficientNet-B1 copies and its step function."""
    torch.manual_seed(0)
    models = [efficientnet_b1((3, side, side), 1).to(device) for _ in range(seeds)]
    adam = functools.partial(torch.optim.Adam, lr=1e-3)
    loss = loss_fn("bce")
    if stacked:
        pop = VectorizedPopulation(models, adam, loss, list(range(seeds)), amp=amp)
        return pop.train_step
    pop = SequentialPopulation(models, adam, loss, list(range(seeds)))
    cast = functools.partial(torch.autocast, "cuda", torch.bfloat16) if amp else nullcontext

    def step(x, y):
        with cast():
            return pop.train_step(x, y)

    return step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(args, device: torch.device) -> dict:
    seeds, side, batch = (2, 16, 8) if args.quick else (args.seeds, 32, args.batch)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, side, side, generator=g).to(device)
    y = torch.randint(0, 2, (batch,), generator=g).float().to(device)
    variants = [(s, a) for a in ([False, True] if device.type == "cuda" else [False])
                for s in (False, True)]  # fmt: skip
    steps = {v: build(*v, seeds, side, device) for v in variants}
    for v in variants:  # warm-up: first-call dispatch, cuDNN's algorithm search
        for _ in range(1 if args.quick else 3):
            steps[v](x, y)
    times = {v: [] for v in variants}
    for r in range(args.rounds):
        for v in variants if r % 2 == 0 else variants[::-1]:
            sync(device)
            t = time.perf_counter()
            for _ in range(args.steps):
                losses = steps[v](x, y)
            losses.sum().item()  # one host sync, as at a log interval
            sync(device)
            times[v].append((time.perf_counter() - t) / args.steps)
    rows = []
    for stacked, amp in variants:
        ms = statistics.median(times[stacked, amp]) * 1e3
        row = {"stacked": stacked, "amp": amp, "ms_per_step": ms}
        row["samples_per_s"] = seeds * batch / (ms / 1e3)
        if stacked:  # within each round: sequential time / stacked time
            pairs = zip(times[False, amp], times[True, amp])
            row["speedup"] = statistics.median(a / b for a, b in pairs)
        rows.append(row)
    return {
        "device": str(device),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "shape": {
            "model": "efficientnet_b1",
            "input": [3, side, side],
            "seeds": seeds,
            "batch": batch,
            "steps": args.steps,
            "rounds": args.rounds,
        },  # fmt: skip
        "rows": rows,
        "quick": args.quick,
        "target": TARGET,
    }


def table(result: dict) -> str:
    s = result["shape"]
    lines = [
        f"EfficientNet-B1, {s['seeds']} seeds, {s['input']} inputs, batch {s['batch']}, "
        f"{result['device']} ({result['gpu'] or 'CPU'}), torch {result['torch']}",
        "",
        "| population | bf16 | ms per step (all copies) | samples/s | stacked / sequential |",
        "|---|---|---:|---:|---:|",
    ]
    for r in result["rows"]:
        ratio = f"{r['speedup']:.2f}x" if "speedup" in r else "-"
        lines.append(
            f"| {'stacked' if r['stacked'] else 'sequential'} | {'on' if r['amp'] else 'off'} "
            f"| {r['ms_per_step']:.1f} | {r['samples_per_s']:,.0f} | {ratio} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--quick", action="store_true", help="2 tiny copies, 1 step: a smoke test")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=None, help="steps per timing")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved repeats")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench/seed_study.json"))
    args = parser.parse_args()
    args.steps = args.steps or (1 if args.quick else 10)
    args.rounds = args.rounds or (1 if args.quick else 3)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    result = run(args, device)
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
