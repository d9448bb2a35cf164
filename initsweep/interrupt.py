"""SIGINT and SIGTERM: a job stops like Ctrl-C, records itself ``interrupted`` and exits 128+n.

A multirun's launching process hands SIGTERM to its joblib workers and waits for them, which
joblib would otherwise kill at once (SIGKILL), so every job finishes its files first.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path

_asked: list[int] = []  # the signals that asked this process to stop


def catch_sigterm() -> None:
    """SIGTERM ends a job like Ctrl-C: trackers finish, files stay consistent. Launchers that
    handle it themselves (submitit requeues on its own signals) keep their handler. SIGINT keeps
    Python's KeyboardInterrupt, remembered for :func:`stop_if_asked`."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupt)


def stop_if_asked() -> None:
    """Raise the stop a signal asked for if it has not ended the job yet: Python raises it
    wherever the main thread is, and inside a finalizer (a ``__del__``, a weakref callback) it is
    only printed. The training loop calls this at each log point."""
    if _asked:
        raise KeyboardInterrupt(_asked[0])


def _interrupt(signum: int, frame) -> None:
    _asked.append(signum)
    raise KeyboardInterrupt(signum)


def _terminate(signum: int, frame) -> None:
    """Stop once: a second signal must not cut the clean-up short."""
    signal.signal(signum, signal.SIG_IGN)
    _asked.append(signum)
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
