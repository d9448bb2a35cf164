"""Every random draw of the init library has its own generator, seeded from (seed, name).

So changing one layer's scheme never shifts another layer's draws, and a seed gives the same
initial weights on every device (draws happen on the CPU).
"""

from __future__ import annotations

import hashlib

import torch


def param_generator(seed: int, name: str) -> torch.Generator:
    """A CPU generator seeded from a stable hash of (seed, parameter name)."""
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
