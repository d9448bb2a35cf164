"""Known failures, each as one line and an exit code, and how a failed job says so on disk.

2 is the user's mistake (a config value, a refused target, a damaged file to delete), 1 the
machine's (a full disk, memory that cannot be allocated). A job that fails leaves
``status.json`` (``failed``, the line, its overrides): the report shows it, and the launching
process of a multirun lists every failed job from those files at the end.
"""

from __future__ import annotations

import errno
import json
import re
from collections.abc import Iterator
from pathlib import Path

from hydra.errors import HydraException, InstantiationException
from omegaconf.errors import OmegaConfBaseException

from initsweep.errors import ConfigError, first_line
from initsweep.files import STATUS, SUMMARY, write_json_atomic

USER_ERRORS = (ConfigError, InstantiationException, OmegaConfBaseException, HydraException)
# what a full disk, a quota or a read-only mount raise: the environment's fault, not a bug
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}
MEMORY = ("out of memory", "not enough memory", "can't allocate memory")  # torch's allocators


def _chain(e: BaseException | None) -> Iterator[BaseException]:
    """``e`` and the exceptions it was raised from or during (torch's zip writer, for one,
    raises its own error while a full disk's ``OSError`` is being handled)."""
    while e is not None:
        yield e
        e = e.__cause__ or e.__context__


def classify(e: BaseException, out: str | Path) -> tuple[str, int] | None:
    """The one line and exit code of a known failure of the job writing ``out``; ``None`` for
    anything else (a bug: its traceback is what helps)."""
    if isinstance(e, USER_ERRORS):
        return first_line(e), 2
    for cause in _chain(e):
        if isinstance(cause, OSError) and cause.errno in DISK_ERRORS:
            return (
                f"cannot write {cause.filename or out}: {cause.strerror}; free space and run "
                "the same command again (the job resumes from its last checkpoint)",
                1,
            )
    if isinstance(e, MemoryError) or (
        isinstance(e, RuntimeError) and any(m in str(e) for m in MEMORY)
    ):
        why = re.sub(r"^\[enforce fail[^\]]*\]\s*(err == 0\.\s*)?", "", first_line(e))
        return (
            f"out of memory ({why[:160]}); run fewer seeds per job, a smaller "
            "trainer.batch_size or trainer.eval_batch_size, or a smaller model",
            1,
        )
    return None


def mark_failed(out: str | Path, line: str, code: int, overrides: list[str]) -> None:
    """``status.json`` says the job failed and why, unless ``out`` holds a finished job (a
    re-run refused for its config must not mark it). Best effort: the disk may be full."""
    out = Path(out)
    if not out.is_dir() or (out / SUMMARY).exists():
        return
    status = {"status": "failed", "error": line, "exit_code": code, "overrides": overrides}
    try:
        write_json_atomic(out / STATUS, status)
    except OSError:
        pass


def failed_jobs(sweep_dir: Path, since: float) -> list[dict]:
    """The jobs of a sweep dir that failed since ``since`` (a time), from their ``status.json``,
    in job order: ``{"job": <subdir>, "error": ..., "exit_code": ..., ...}``."""
    failed = []
    for path in sorted(sweep_dir.glob(f"*/{STATUS}"), key=lambda p: p.parent.name.zfill(9)):
        try:
            status = json.loads(path.read_text())
            recent = path.stat().st_mtime >= since
        except (OSError, ValueError):
            continue
        if isinstance(status, dict) and status.get("status") == "failed" and recent:
            failed.append({"job": path.parent.name, **status})
    return failed
