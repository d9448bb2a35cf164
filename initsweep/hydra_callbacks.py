"""Hydra callbacks: checks that must run before Hydra itself writes anything."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def _unwritable(path: Path) -> str | None:
    """Why ``path`` cannot hold a job's files, or None when it can."""
    existing = path
    while not existing.exists():  # the nearest folder that exists must be a writable folder
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file"
    probe = existing / ".initsweep-write-test"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        return e.strerror
    return None


class OutputDirCheck(Callback):
    """Refuse, in one line, an output dir that cannot be written, before Hydra creates it."""

    def _check(self, key: str, value: str) -> None:
        why = _unwritable(Path(value).absolute())
        if why:
            print(f"initsweep: error: {key}={value!r} is not writable ({why})", file=sys.stderr)
            sys.exit(2)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check("hydra.run.dir", config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check("hydra.sweep.dir", config.hydra.sweep.dir)
