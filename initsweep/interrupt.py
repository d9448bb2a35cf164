"""SIGINT and SIGTERM: a job stops like Ctrl-C, records itself ``interrupted`` and exits 128+n.

A multirun's launching process hands SIGTERM to its joblib workers and waits for them, which
joblib would otherwise kill at once (SIGKILL), so every job finishes its files first.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def catch_sigterm() -> None:
    """SIGTERM ends a job like Ctrl-C: trackers finish, files stay consistent. Launchers that
    handle it themselves (submitit requeues on its own signals) keep their handler."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)


def _terminate(signum: int, frame) -> None:
    """Stop once: a second signal must not cut the clean-up short."""
    signal.signal(signum, signal.SIG_IGN)
    workers = launcher_workers()
    for pid in workers:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 60
    while any(map(_running, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    raise KeyboardInterrupt(signum)


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block ends, then take effect as usual.

    For a study's database calls: an interrupt raised inside a SQLite transaction leaves its
    lock held by a connection nobody closes, and the sweeper of the same process (the basic
    launcher runs the job in it) then waits on that lock to record the trial interrupted, for
    ever. Outside the main thread (where no signal handler runs), or where a handler was not
    set from Python (it could not be put back), the block runs as it is.
    """
    held = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread() or any(
        signal.getsignal(s) is None for s in held
    ):
        yield
        return
    pending: list[int] = []
    before = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        for signum in pending[:1]:
            signal.raise_signal(signum)  # the handler it had, now


def launcher_workers() -> list[int]:
    """The joblib launcher's worker processes: this process's children named ``LokyProcess``
    (Linux; elsewhere none are found)."""
    workers = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid() and b"LokyProcess" in (proc / "cmdline").read_bytes():
                workers.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return workers


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def exit_interrupted(e: KeyboardInterrupt) -> None:
    """One line saying how to resume, then exit 128 + the signal's number."""
    signum = e.args[0] if e.args else signal.SIGINT
    print(
        f"initsweep: interrupted by {signal.Signals(signum).name}; run the same command "
        "(same output dir) to resume from the last epoch's checkpoint",
        file=sys.stderr,
    )
    if multiprocessing.current_process().name.startswith("LokyProcess"):
        # a joblib worker: its job has recorded itself; end the process, which the launching
        # process waits for (joblib would keep an idle worker alive)
        sys.stderr.flush()
        os._exit(128 + signum)
    sys.exit(128 + signum)
