"""Dropout masks for M copies at once, each copy from its own random stream.

``nn.Dropout`` on the CPU draws its masks with ``bernoulli_``: one Mersenne-Twister number per
element on one thread, which costs as much as all the matmuls of a small MLP step.
:class:`DropoutStreams` instead fills int64 words with 64 random bits (one MT call per word) and
compares each word's four int16 pieces with a threshold: 4 masks per draw, several times
faster (docs/explanation/performance.md). The masks are statistically those of ``nn.Dropout``
but not its random stream; every dropout of initsweep draws them this way, in the hand-written
MLP stack, under ``vmap`` and for a copy alone (``initsweep/train/draws.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

_LEVELS = 1 << 16  # an int16 piece takes 65536 equally likely values


def keep_below(p: float) -> int:
    """The int16 threshold t with ``P(piece < t) = round(p * 65536) / 65536``: a piece below it
    is a success of a Bernoulli(p) draw, p quantised to 1/65536."""
    return -(_LEVELS // 2) + round(p * _LEVELS)


def keep_threshold(p: float) -> int:
    """The threshold of dropout with drop probability p: units are kept with probability
    ``round((1 - p) * 65536) / 65536`` (p = 0.2 keeps 52429/65536 = 0.800003); the kept units
    are scaled by ``1 / (1 - p)`` as in ``nn.Dropout``."""
    return keep_below(1.0 - p)


class DropoutStreams:
    """One ``torch.Generator`` per copy; ``mask(p, shape)`` gives scaled masks ``[M, *shape]``.

    Copy i's masks come only from generator i, so they do not depend on the other copies
    (nor on M), and masks differ across copies.
    """

    def __init__(self, seeds: list[int], device: torch.device) -> None:
        self.device = torch.device(device)
        self.generators = [torch.Generator(device=self.device).manual_seed(s) for s in seeds]

    def __len__(self) -> int:
        return len(self.generators)

    def bits(self, n: int) -> Tensor:
        """``[M, n]`` int16 pieces, uniform on [-32768, 32767], copy i's from generator i."""
        return torch.stack([random_pieces(g, n, self.device) for g in self.generators])

    def mask(self, p: float, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        """Inverted-dropout multipliers ``[M, *shape]``: 0 with probability p, else 1/(1-p)."""
        keep = self.bits(int(torch.Size(shape).numel())) < keep_threshold(p)
        return keep.view(len(self), *shape).to(dtype).mul_(1.0 / (1.0 - p))

    def get_state(self) -> list[Tensor]:
        return [g.get_state() for g in self.generators]

    def set_state(self, states: list[Tensor]) -> None:
        for g, s in zip(self.generators, states):
            g.set_state(s)


def random_pieces(generator: torch.Generator, n: int, device: torch.device) -> Tensor:
    """``n`` int16 pieces, uniform on [-32768, 32767]: ``ceil(n / 4)`` random 64-bit words of
    ``generator`` cut in four (a copy's masks in the stack and alone come from this one place)."""
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device)
    words.random_(-(2**63), None, generator=generator)  # all 64 bits random
    return words.view(torch.int16)[:n]


def global_generator(device: torch.device) -> torch.Generator:
    """The global RNG of ``device`` (what ``nn.Dropout`` draws from)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.default_generators[index]
    return torch.default_generator


@contextmanager
def global_rng_as(generator: torch.Generator) -> Iterator[None]:
    """Run the block with ``generator``'s state as its device's global RNG, then store the
    advanced state back in ``generator`` and give the global RNG its own state again.

    For code that draws from the global RNG (``nn.Dropout`` in a plain module, ``vmap``'s
    ``randomness="different"``): each copy then keeps a stream of its own.
    """
    device = generator.device
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else [], device_type="cuda"):
        if cuda:
            torch.cuda.set_rng_state(generator.get_state(), device)
        else:
            torch.set_rng_state(generator.get_state())
        yield
        generator.set_state(torch.cuda.get_rng_state(device) if cuda else torch.get_rng_state())
