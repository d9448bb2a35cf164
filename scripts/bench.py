"""Throughput of multi-seed training: the naive loop against initsweep's populations.

Samples per second for all copies together (one sample = one copy seeing one example):

  (a) naive: each copy in turn, a DataLoader over a TensorDataset, a plain nn.Module,
      torch.optim.Adam and ``loss.item()`` every step, as blog posts do;
  (b) initsweep sequential: SequentialPopulation on pre-loaded tensors, the loop's hot path;
  (c) initsweep vectorized: VectorizedPopulation, every copy in one stacked step;
  (g) for the MLP, (c)'s matrix products alone, in (c)'s shards: a ceiling for (c), since no
      fp32 step on these kernels can beat its own GEMMs;

for the FashionMNIST-shaped MLP 784-256-256-10 (ReLU, dropout 0.2, Adam, batch 128, synthetic
data of the real shape) at M = 1, 10, 60; the small CNN (conv 32, conv 64, 3x32x32) at
M = 1, 4, 10; torchvision's ResNet-18 and EfficientNet-B0 (3x32x32, batch 32; (b) and (c)
only) at M = 1, 4, 10. For the conv nets (c) is the generic vmap stack, and the
"stacked against sequential" table (scripts/bench_stack.py) says which population
``trainer.strategy=auto`` builds for each. Each timing is a fixed number of model-steps
(a sequential variant gives each copy 1/M of them). Every variant walks on through its epochs
from one timing to the next, so a per-epoch cost (a DataLoader epoch per copy in (a), one
shuffled gather in (b) and (c), as in the loop) is paid once per epoch, as in training.
Building (c) switches glibc to keep freed memory (initsweep/train/malloc.py); that setting is
process-wide, so (a) and (b) are timed under it too. Each (model, M) in turn: every round
measures the float32 matmul peak (2048^2 ``torch.mm``, all threads) and then each variant once,
interleaved; the table shows medians over rounds, the ratio to (a) taken within each round,
% of peak with 6 x params FLOPs/sample for the MLP (3 x forward FLOPs for the conv nets, where
6 x params means nothing), and (c) as a fraction of its ceiling (g). ``foreign`` is the CPU
share other processes used during the timings. The whole-study benchmark is
scripts/bench_study.py.

  .venv/bin/python scripts/bench.py            # full run (about 17 minutes), outputs/bench/
  .venv/bin/python scripts/bench.py --quick    # a smoke test of the whole script
  .venv/bin/python scripts/bench.py --models cnn,resnet18 --clock cpu   # on a busy machine
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import torch
from bench_stack import stack_rows, stack_table  # scripts/bench_stack.py, beside this script
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from initsweep.models import CNN, MLP, TorchvisionNet
from initsweep.train.metrics import loss_fn
from initsweep.train.population import SequentialPopulation
from initsweep.train.stacked import gemm_nt
from initsweep.train.vectorized import VectorizedPopulation, default_shards, shard_bounds

BATCH = 128
TARGETS = {"peak_fraction_c_m60": 0.5}  # (c) is also reported as a fraction of its ceiling (g)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(
    device: torch.device, n: int = 2048, calls: int = 8, clock=time.perf_counter
) -> float:
    """float32 GEMM FLOP/s: median of ``calls`` n x n ``torch.mm`` with all threads."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.mm(a, b)
    times = []
    for _ in range(calls):
        sync(device)
        t = clock()
        torch.mm(a, b)
        sync(device)
        times.append(clock() - t)
    return 2 * n**3 / statistics.median(times)


class CpuLoad:
    """The CPU share (0-1 of the machine) that processes other than this one and its children
    used between start and stop (scripts/bench_study.py times child processes)."""

    def __enter__(self):
        self.busy, self.own, self.wall = _busy_seconds(), _own_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        wall = time.perf_counter() - self.wall
        foreign = (_busy_seconds() - self.busy) - (_own_seconds() - self.own)
        self.foreign = max(0.0, foreign) / (wall * (os.cpu_count() or 1))


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _busy_seconds() -> float:
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except OSError:
        return 0.0
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait


# --- the models: factory, naive twin as a plain nn.Sequential, FLOPs per sample, input shape,
# batch size


class Spec(NamedTuple):
    make: Callable[[], nn.Module]
    naive: Callable[[], nn.Module] | None
    flops: float
    shape: tuple[int, ...]
    batch: int = BATCH


def mlp_spec():
    def make():
        return MLP((784,), 10, hidden=(256, 256), dropout=0.2)

    def naive():
        return nn.Sequential(
            nn.Flatten(),
            *(nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2)),
            *(nn.Linear(256, 256), nn.ReLU(), nn.Dropout(0.2)),
            nn.Linear(256, 10),
        )

    params = sum(p.numel() for p in make().parameters())
    return Spec(make, naive, 6 * params, (784,))


def cnn_spec():
    def make():
        return CNN((3, 32, 32), 10, channels=(32, 64))

    def naive():
        return nn.Sequential(
            *(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
            *(nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
            *(nn.Flatten(), nn.Linear(4096, 10)),
        )

    # 3 x forward multiply-adds x 2: conv1 32x32 pixels, conv2 16x16, the head
    forward = 2 * (32 * 32 * 32 * 27 + 16 * 16 * 64 * 288 + 4096 * 10)
    return Spec(make, naive, 3 * forward, (3, 32, 32))


def torchvision_spec(arch: str, side: int, batch: int):
    """torchvision's ``arch`` on ``side`` x ``side`` RGB images (a stride-1 stem below 64 px, as
    a job builds it); FLOPs per sample: 3 x the forward's, counted by torch's FlopCounterMode."""

    def make():
        return TorchvisionNet((3, side, side), 10, arch=arch)

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        make().eval()(torch.zeros(1, 3, side, side))
    return Spec(make, None, 3 * counter.get_total_flops(), (3, side, side), batch)


# --- the variants: each returns a function that runs ``model_steps`` and the samples it saw


def naive_variant(spec, m, data, device, model_steps):
    make_naive = spec.naive
    x, y = data[0].cpu(), data[1].cpu()
    models = [make_naive().to(device) for _ in range(m)]
    optimizers = [torch.optim.Adam(model.parameters(), lr=1e-3) for model in models]
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    streams = [epochs(loader) for _ in models]  # each copy's own pass through the epochs

    def go(steps: int = model_steps // m) -> int:
        for model, opt, stream in zip(models, optimizers, streams):
            for _ in range(steps):
                xb, yb = next(stream)
                xb, yb = xb.to(device), yb.to(device)
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(xb), yb)
                loss.backward()
                opt.step()
                loss.item()
        return steps * m * BATCH

    return go


def epochs(batches):
    """Endless epochs of an iterable of batches, as ``for epoch ...: for batch in batches``."""
    while True:
        yield from batches


class Shuffled:
    """The loop's batches: each epoch one gather ``x[order]``, then contiguous slices of it."""

    def __init__(self, x, y, batch: int = BATCH) -> None:
        self.x, self.y, self.batch = x, y, batch

    def __iter__(self):
        order = torch.randperm(len(self.x), device=self.x.device)
        xs, ys, b = self.x[order], self.y[order], self.batch
        for j in range(0, len(xs) - b + 1, b):
            yield xs[j : j + b], ys[j : j + b]


def population_variant(strategy):
    def build(spec, m, data, device, model_steps):
        models = [spec.make().to(device) for _ in range(m)]
        adam = functools.partial(torch.optim.Adam, lr=1e-3)
        population = SequentialPopulation if strategy == "sequential" else VectorizedPopulation
        pop = population(models, adam, loss_fn("cross_entropy"), list(range(m)))
        stream = epochs(Shuffled(*data, spec.batch))

        # sequential: each copy takes model_steps / M steps; vectorized: a step moves all M
        def go(steps: int = model_steps // m) -> int:
            loss_sum = torch.zeros(m, device=device)
            for _ in range(steps):
                loss_sum += pop.train_step(*next(stream))  # the loop's hot path
            loss_sum.tolist()  # one host sync, as at a log interval
            return steps * m * spec.batch

        return go

    return build


def gemm_variant(spec, m, data, device, model_steps):
    """The matrix products of (c)'s step alone, in (c)'s shards: a ceiling for any fp32 step
    built on these kernels (no optimizer, activations, masks, loss, data or Python loop)."""
    widths = [
        (k.in_features, k.out_features) for k in spec.make().modules() if isinstance(k, nn.Linear)
    ]
    n = default_shards(device, m)
    shards = [_gemms(widths, b - a, device) for a, b in shard_bounds(m, n)]
    pool = ThreadPoolExecutor(n, initializer=torch.set_num_threads, initargs=(1,))

    def go(steps: int = model_steps // m) -> int:
        def run(step):
            for _ in range(steps):
                step()

        for future in [pool.submit(run, step) for step in shards]:
            future.result()
        return steps * m * BATCH

    return go


def _gemms(widths, m, device):
    """One shard's step of the stacked MLP, GEMMs only: the first layer's forward and weight
    gradient on the shared batch, then forward, weight and input gradient of each later layer."""
    (n_in, n_out), later = widths[0], widths[1:]
    x, w, g = (
        torch.randn(*s, device=device)
        for s in ((BATCH, n_in), (m * n_out, n_in), (m * n_out, BATCH))
    )
    layers = [
        (
            torch.randn(m, BATCH, i, device=device),
            torch.randn(m, i, o, device=device),
            torch.randn(m, BATCH, o, device=device),
        )
        for i, o in later
    ]

    def step():
        gemm_nt(x, w)
        gemm_nt(g, x.t())
        for h, w_k, g_k in layers:
            torch.bmm(h, w_k)
            torch.bmm(h.transpose(1, 2), g_k)
            torch.bmm(g_k, w_k.transpose(1, 2))

    return step


VARIANTS = {
    "a": ("naive DataLoader loop", naive_variant),
    "b": ("initsweep sequential", population_variant("sequential")),
    "c": ("initsweep vectorized", population_variant("vectorized")),
    "g": ("GEMMs of (c) only: ceiling", gemm_variant),
}


# the "stacked against sequential" table: the models whose copies auto may stack through vmap
STACK_MODELS = ("cnn", "resnet18", "efficientnet_b0")
MODELS = ("mlp", *STACK_MODELS)


def plan(quick: bool, models: list[str], scale: float):
    """(model name, spec, samples, model-steps per timing, copy counts, variants) for ``models``;
    the GEMM-only ceiling (g) is written for the stacked MLP only, the naive loop (a) for the
    MLP and the small CNN (the torchvision nets: sequential (b) against stacked (c) only)."""
    if quick:
        full = [
            ("mlp", lambda: mlp_spec(), 1024, 8, (1, 2), "abcg"),
            ("cnn", lambda: cnn_spec(), 256, 2, (1, 2), "abc"),
            ("resnet18", lambda: torchvision_spec("resnet18", 16, 8), 64, 2, (1, 2), "bc"),
            ("efficientnet_b0", lambda: torchvision_spec("efficientnet_b0", 16, 8), 64, 2,
             (1, 2), "bc"),
        ]  # fmt: skip
    else:  # CIFAR-shaped images for the conv nets; a smaller batch for the torchvision nets
        full = [
            ("mlp", lambda: mlp_spec(), 60000, 960, (1, 10, 60), "abcg"),
            ("cnn", lambda: cnn_spec(), 10000, 60, (1, 4, 10), "abc"),
            ("resnet18", lambda: torchvision_spec("resnet18", 32, 32), 2000, 20, (1, 4, 10), "bc"),
            ("efficientnet_b0", lambda: torchvision_spec("efficientnet_b0", 32, 32), 2000, 40,
             (1, 4, 10), "bc"),
        ]  # fmt: skip
    # model-steps stay a multiple of every M, so each timing does the same work
    out = []
    for name, spec, n, steps, ms, variants in full:
        if name in models:
            unit = math.lcm(*ms)
            out.append(
                (name, spec(), n, max(unit, round(steps * scale / unit) * unit), ms, variants)
            )
    return out


def run(
    rounds: int, device: torch.device, plans, peak_n: int = 2048, clock=time.perf_counter
) -> dict:
    """For each (model, M) of ``plans`` in turn: its variants built, then timed once per round,
    interleaved (the ratios compare variants of one model and M within a round), then freed,
    so that only one group's copies are in memory (all of them at once: 12 GB). ``clock`` is
    wall time, or the process's CPU time (``--clock cpu``, one thread: the work a step does,
    whatever else runs on a shared machine)."""
    cases, peaks, times = [], [], {}
    for name, spec, n, model_steps, ms, variants in plans:
        g = torch.Generator().manual_seed(0)
        data = (
            torch.randn(n, *spec.shape, generator=g).to(device),
            torch.randint(0, 10, (n,), generator=g).to(device),
        )
        for m in ms:
            group = []
            for v in variants:
                fn = VARIANTS[v][1](spec, m, data, device, model_steps)
                fn(2)  # warm-up: allocations, first-call dispatch
                group.append(len(cases))
                cases.append({"model": name, "m": m, "variant": v, "fn": fn, "flops": spec.flops})
                times[group[-1]] = []
            for r in range(rounds):
                peaks.append(matmul_peak(device, peak_n, clock=clock))
                for i in group if r % 2 == 0 else group[::-1]:  # no variant always goes first
                    sync(device)
                    with CpuLoad() as load:
                        t = clock()
                        samples = cases[i]["fn"]()
                        sync(device)
                        wall = clock() - t
                    times[i].append((samples / wall, load.foreign))
            for i in group:
                cases[i]["fn"] = None  # its copies and optimizer go
            print(f"{name} M={m}: {rounds} rounds, peak {peaks[-1] / 1e9:.0f} GFLOP/s", flush=True)
    return summarize(cases, times, peaks, device)


def summarize(cases, times, peaks, device) -> dict:
    peak = statistics.median(peaks)
    rows = []
    index = {(c["model"], c["m"], c["variant"]): i for i, c in enumerate(cases)}

    def ratio(i: int, base: str) -> float | None:  # the median of the ratios within rounds
        j = index.get((cases[i]["model"], cases[i]["m"], base))
        if j is None:
            return None
        return statistics.median(a[0] / b[0] for a, b in zip(times[i], times[j]))

    for i, c in enumerate(cases):
        rates = [t[0] for t in times[i]]
        median = statistics.median(rates)
        rows.append(
            {
                "model": c["model"],
                "m": c["m"],
                "variant": c["variant"],
                "what": VARIANTS[c["variant"]][0],
                "samples_per_s": median,
                "min": min(rates),
                "max": max(rates),
                "ratio_vs_a": ratio(i, "a"),
                "ratio_vs_b": ratio(i, "b"),
                "peak_fraction": median * c["flops"] / peak,
                "flops_per_sample": c["flops"],
                "foreign_cpu": statistics.median(t[1] for t in times[i]),
                "rounds": len(rates),
                "per_round": [{"samples_per_s": t[0], "foreign_cpu": t[1]} for t in times[i]],
            }
        )
    return {
        "device": str(device),
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "peak_flops": peak,
        "peaks": peaks,
        "rows": rows,
        "targets": check_targets(rows),
    }


def check_targets(rows) -> dict:
    """The per-step target: (c) at M = 60 >= 50 % of peak (the whole-study targets are
    scripts/bench_study.py's; the old (c)/(a) >= 3.5 is retired: on a CPU the step's matrix
    products alone, (g), are barely that)."""
    got = {(r["model"], r["m"], r["variant"]): r for r in rows}
    out = {}
    if ("mlp", 60, "c") in got:
        frac = got["mlp", 60, "c"]["peak_fraction"]
        out["mlp M=60 (c) >= 50% of peak"] = (
            round(frac, 3),
            frac >= TARGETS["peak_fraction_c_m60"],
        )
    return out


def table(result: dict) -> str:
    lines = [
        f"device {result['device']}, {result['threads']} thread{'s' * (result['threads'] > 1)}, "
        f"torch {result['torch']}; "
        f"fp32 matmul peak {result['peak_flops'] / 1e9:.0f} GFLOP/s (median of "
        f"{len(result['peaks'])}, {min(result['peaks']) / 1e9:.0f}-"
        f"{max(result['peaks']) / 1e9:.0f})",
        "",
        "| model | M | variant | samples/s (median) | min-max | vs (a) | % of peak | foreign CPU |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        vs_a = "-" if r["ratio_vs_a"] is None else f"{r['ratio_vs_a']:.2f}x"
        lines.append(
            f"| {r['model']} | {r['m']} | ({r['variant']}) {r['what']} | {r['samples_per_s']:,.0f} "
            f"| {r['min']:,.0f}-{r['max']:,.0f} | {vs_a} "
            f"| {100 * r['peak_fraction']:.0f}% | {100 * r['foreign_cpu']:.0f}% |"
        )
    lines.append("")
    for name, (value, ok) in result["targets"].items():
        lines.append(f"target {name}: {value} {'met' if ok else 'NOT met'}")
    got = {(r["model"], r["m"], r["variant"]): r for r in result["rows"]}
    for (model, m, v), g in got.items():
        if v == "g" and (model, m, "c") in got:
            c = got[model, m, "c"]["samples_per_s"] / g["samples_per_s"]
            lines.append(
                f"ceiling {model} M={m}: (c) runs at {100 * c:.0f}% of its GEMMs alone (g), "
                f"and (g) itself is {g['ratio_vs_a']:.2f}x (a)"
            )
    if result.get("stack"):
        lines += ["", "stacked (vmap) against sequential, and what trainer.strategy=auto picks:"]
        lines += ["", stack_table(result["stack"])]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 round: a smoke test")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved repeats (>= 3)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench/bench.json"))
    parser.add_argument("--models", default=",".join(MODELS), help=f"some of {MODELS}")
    parser.add_argument("--scale", type=float, default=1.0, help="x the model-steps per timing")
    parser.add_argument(
        "--clock", default="wall", choices=("wall", "cpu"), help="cpu: 1 thread, CPU seconds"
    )
    args = parser.parse_args()
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    rounds = args.rounds or (1 if args.quick else 3)
    plans = plan(args.quick, args.models.split(","), args.scale)
    clock = time.perf_counter
    if args.clock == "cpu":  # one thread's CPU seconds: robust to a busy machine (CPU only)
        torch.set_num_threads(1)
        clock = time.process_time
    result = run(rounds, device, plans, peak_n=512 if args.quick else 2048, clock=clock)
    result["quick"], result["clock"] = args.quick, args.clock
    makes = {name: spec.make for name, spec, *_ in plans if name in STACK_MODELS}
    result["stack"] = stack_rows(result["rows"], makes, device)
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
