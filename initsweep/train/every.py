"""When a job writes its checkpoint: every N epochs, or every N seconds, and always at the end.

``trainer.checkpoint_every`` is a whole number of epochs (``1``: after each epoch) or a number
of seconds (``60s``, the default): by time, a study's checkpoint cost no longer grows with its
epoch count, and a killed job loses at most that much training. Checkpoints are written only
after an epoch, where the loop's state is whole, so a resumed job still reproduces an
uninterrupted one exactly.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from initsweep.errors import invalid

_FORM = re.compile(r"^\s*(?:(\d+)|(\d+(?:\.\d*)?|\.\d+)\s*s)\s*$")
ALLOWED = "a whole number of epochs >= 1 (e.g. 1) or of seconds (e.g. 60s)"


@dataclass(frozen=True)
class Every:
    """A checkpoint schedule: ``epochs`` or ``seconds`` (one of the two is set)."""

    epochs: int | None = None
    seconds: float | None = None

    def __str__(self) -> str:
        return f"{self.epochs}" if self.epochs is not None else f"{self.seconds:g}s"


def parse_every(value: object, key: str = "trainer.checkpoint_every") -> Every:
    """``1`` -> every epoch, ``60s`` -> every 60 seconds; anything else: one line naming
    ``key``, the value and what is allowed (:class:`~initsweep.errors.ConfigError`)."""
    match = _FORM.match(str(value)) if isinstance(value, (str, int)) else None
    if match is None or (match[1] is not None and int(match[1]) < 1):
        raise invalid(key, value, ALLOWED)
    return Every(epochs=int(match[1])) if match[1] is not None else Every(seconds=float(match[2]))


class Schedule:
    """Is a checkpoint due after this epoch? (Started when training starts.)

    By epochs: after epochs ``N, 2N, ...`` (the same epochs after a resume). By time: after the
    first epoch that ends at least ``seconds`` after the last checkpoint (or the start).
    Always after the last epoch (``epochs``).
    """

    def __init__(
        self, every: Every, epochs: int | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.every, self.epochs, self.clock = every, epochs, clock
        self.last = clock()

    def due(self, epoch: int) -> bool:
        if self.epochs is not None and epoch >= self.epochs:
            return True
        if self.every.epochs is not None:
            return epoch % self.every.epochs == 0
        return self.clock() - self.last >= self.every.seconds

    def saved(self) -> None:
        """A checkpoint was written now: the next is due ``seconds`` from here."""
        self.last = self.clock()
