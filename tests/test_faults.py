"""Faults of an unlucky user: two writers of one dir, a bad job in a multirun, a full disk, memory
that cannot be allocated, damaged files, signals, typos. Each ends in one line, with a non-zero
exit where it is an error, nothing already written lost and nothing claiming to be finished."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from initsweep.errors import ConfigError
from initsweep.files import LOCK, lock_dir
from initsweep.job import run
from tests.conftest import REPO, run_cli
from tests.test_config_safety import _Payload

QUICK = ["trainer.epochs=1", "trainer.progress=false", "dataset.limit=200"]


def _stderr_lines(res) -> list[str]:
    """What the user reads on stderr, without the INFO log lines."""
    return [ln for ln in res.stderr.splitlines() if "[INFO]" not in ln and ln.strip()]


# --- two writers, one job dir -----------------------------------------------------------------


def _slow_job(out: Path) -> subprocess.Popen:
    """A job that writes ``out`` for a while (about two seconds an epoch here)."""
    return subprocess.Popen(
        [sys.executable, "-m", "initsweep", "trainer.epochs=30", "trainer.batch_size=8"]
        + ["model.hidden=[512,512]", "trainer.progress=false", f"hydra.run.dir={out}"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"no {path.name} in time"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_second_writer_is_refused_in_one_line_and_touches_nothing(tmp_path):
    out = tmp_path / "run"
    first = _slow_job(out)
    try:
        _wait_for(out / "metrics.jsonl", first)
        before = {p: p.read_bytes() for p in (out / ".hydra").iterdir()}
        second = run_cli(*QUICK, f"hydra.run.dir={out}")
        assert second.returncode == 2
        assert _stderr_lines(second) == [
            f"initsweep: error: hydra.run.dir='{out}' is being written by another initsweep "
            "process; wait until it ends, or choose another hydra.run.dir / hydra.sweep.dir"
        ]
        # the first writer's files are its own: Hydra's record of its config too
        assert {p: p.read_bytes() for p in (out / ".hydra").iterdir()} == before
        assert first.poll() is None  # and it goes on
    finally:
        first.kill()
        first.wait()
    lock_dir(out).release()  # the lock died with the process (kill -9): the dir is free again


@pytest.mark.slow
def test_a_second_sweep_into_a_running_sweep_dir_is_refused(tmp_path):
    sweep = tmp_path / "sweep"
    first = subprocess.Popen(
        [sys.executable, "-m", "initsweep", "-m", "trainer.epochs=30", "trainer.batch_size=8"]
        + ["model.hidden=[512,512]", "trainer.progress=false", f"hydra.sweep.dir={sweep}"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(sweep / "0" / "metrics.jsonl", first)
        second = run_cli("-m", *QUICK, f"hydra.sweep.dir={sweep}")
        assert second.returncode == 2
        assert _stderr_lines(second)[-1].startswith(
            f"initsweep: error: hydra.sweep.dir='{sweep}' is being written by another"
        )
        assert not (sweep / "1").exists()
    finally:
        first.kill()
        first.wait()


def test_the_job_layer_takes_the_lock_too(make_cfg, tmp_path):
    # the compose API (no CLI callback): the job itself refuses a dir another process writes
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from initsweep.files import lock_dir; "
         f"held = lock_dir({str(tmp_path)!r}); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match="is being written by another initsweep process"):
            run(make_cfg(*QUICK))
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK]
    finally:
        holder.kill()
        holder.wait()
    run(make_cfg(*QUICK))  # free again once the holder is gone
    assert (tmp_path / "summary.json").exists()


# --- one bad job in a multirun ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_a_bad_job_is_reported_the_others_run_and_the_sweep_exits_2(tmp_path, launcher):
    extra = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    res = run_cli(
        "-m", *QUICK, "seeds=[0]", "optimizer.lr=0.1,-1,0.2", *extra, f"hydra.sweep.dir={tmp_path}"
    )
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    error = "optimizer.lr=-1 is invalid: must be a number > 0"
    assert f"initsweep: error: job 1: {error}" in _stderr_lines(res)
    assert _stderr_lines(res)[-1] == (
        f"initsweep: error: 1 of the jobs failed (the others ran): job 1: {error}"
    )
    for job in ("0", "2"):  # the jobs before and after the bad one both finished
        assert json.loads((tmp_path / job / "summary.json").read_text())["status"] == "finished"
    status = json.loads((tmp_path / "1" / "status.json").read_text())
    assert status["status"] == "failed" and status["error"] == error
    assert "optimizer.lr=-1" in status["overrides"]
    assert not (tmp_path / "1" / "summary.json").exists()


# --- typos and bad values: one line naming the key, the value and what is allowed -------------

TYPOS = [
    # (overrides, the one line must start with)
    (["+trainer.epoch=3"], "trainer.epoch=3 is invalid: trainer has no key 'epoch'; did you mean trainer.epochs?"),
    (["+bias.hidden_valeu=0.1"], "bias.hidden_valeu=0.1 is invalid: bias has no key 'hidden_valeu'; did you mean bias.hidden_value?"),
    (["+model.hiden=[8]"], "model.hiden=[8] is invalid: model has no key 'hiden'; did you mean model.hidden?"),
    (["+optimizer.momentun=0.5"], "optimizer.momentun=0.5 is invalid: optimizer has no key 'momentun'; did you mean optimizer.momentum?"),
    (["+dataset.flaten=false"], "dataset.flaten=False is invalid: dataset has no key 'flaten'; did you mean dataset.flatten?"),
    (["+tracker.probe_sise=8"], "tracker.probe_sise=8 is invalid: tracker has no key 'probe_sise'; did you mean tracker.probe_size?"),
    (["+init.mod=fan_out"], "init.mod='fan_out' is invalid: init has no key 'mod'; did you mean init.mode?"),
    (["trainer.eval_batch_size=0"], "trainer.eval_batch_size=0 is invalid: must be >= 1"),
    (["trainer.data_seed=18446744073709551616"], "trainer.data_seed=18446744073709551616 is invalid: must be in (-2**47, 2**47)"),
]  # fmt: skip


@pytest.mark.parametrize("overrides, line", TYPOS, ids=[o[0] for o, _ in TYPOS])
def test_a_typo_or_bad_value_is_one_line(make_cfg, tmp_path, overrides, line):
    with pytest.raises(ConfigError) as err:
        run(make_cfg(*QUICK, *overrides))
    assert str(err.value) == line
    assert not (tmp_path / "summary.json").exists()


def test_keys_that_do_exist_can_still_be_added(make_cfg, tmp_path):
    # +init.rules is a schema key with an empty default; ++search.trial is the sweeper's
    run(make_cfg(*QUICK, "seeds=[0]", "+init.rules=[{pattern: out.weight, scheme: zeros}]"))
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "finished"


def test_an_empty_dataset_yaml_is_one_line(make_cfg, tmp_path):
    conf = tmp_path / "my_conf"
    (conf / "dataset").mkdir(parents=True)
    (conf / "dataset" / "mine.yaml").write_text("")
    cfg = make_cfg("trainer.epochs=1", f"hydra.searchpath=[file://{conf}]", "dataset=mine")
    with pytest.raises(ConfigError, match=r"^dataset={} is invalid: the dataset config is empty"):
        run(cfg)


def _npz(tmp_path: Path, name: str, **arrays) -> str:
    path = tmp_path / f"{name}.npz"
    np.savez(path, allow_pickle=True, **arrays)
    return str(path)


X = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
BAD_DATA = [
    # (task, y, the message must contain)
    ("multiclass", np.r_[np.arange(59) % 3, -1], "label -1 (sample 59) is negative"),
    ("binary", np.arange(60) % 3, "dataset.task='binary' is invalid for data: its targets take 3 values (0, 1, 2)"),
    ("multiclass", np.arange(59) % 2, "x has shape [60, 4] and y [59]; y must hold one target per sample"),
    ("multiclass", np.array([{"label": 1}] * 60, dtype=object), "an array holds Python objects (dtype=object)"),
    ("multiclass", np.arange(60) / 7, "the multiclass targets hold 0.14285714285714285 (sample 1), not a class id"),
    ("regression", np.array(["a"] * 60), "array y has dtype <U1; it must be numeric"),
]  # fmt: skip


@pytest.mark.parametrize("task, y, words", BAD_DATA, ids=[w[:30] for *_, w in BAD_DATA])
def test_bad_labels_and_bad_files_are_refused_before_training(make_cfg, tmp_path, task, y, words):
    path = _npz(tmp_path, "data", x=X, y=y)
    with pytest.raises(ConfigError) as err:
        run(make_cfg(*QUICK, "dataset=npz", f"dataset.path={path}", f"dataset.task={task}"))
    assert words in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "summary.json").exists()


def test_labels_outside_the_classes_of_a_bundle_are_refused():
    import torch

    from initsweep.data.bundle import DataBundle
    from initsweep.data.checks import check_bundle

    x = torch.zeros(20, 3)
    y = torch.arange(20) % 3
    bundle = DataBundle("mine", "multiclass", x, y, x[:5], y[:5] + 1, num_classes=3)
    with pytest.raises(ConfigError, match=r"dataset mine: label 3 \(sample 2\) is outside 0..2"):
        check_bundle(bundle, 8)


# --- memory that cannot be allocated ----------------------------------------------------------


def test_copies_that_cannot_fit_in_memory_are_refused_before_allocating(make_cfg, tmp_path):
    seeds = "[" + ",".join(map(str, range(3000))) + "]"  # 3000 copies of 17 MiB: over 48 GiB
    with pytest.raises(ConfigError) as err:
        run(make_cfg(*QUICK, f"seeds={seeds}", "model.hidden=[2048,2048]"))
    assert str(err.value).startswith("seeds: 3000 copies of this model (17 MiB of parameters")
    assert "run fewer seeds per job" in str(err.value)


@pytest.mark.slow
@pytest.mark.skipif(
    Path("/proc/sys/vm/overcommit_memory").read_text().strip() == "1"
    if Path("/proc/sys/vm/overcommit_memory").exists()
    else True,
    reason="needs an OS that refuses an allocation larger than its memory (Linux, no overcommit)",
)
def test_an_allocation_that_fails_is_one_line(tmp_path):
    # one layer of 10^6 x 10^6 floats: 4 TB, refused by the allocator at once
    res = run_cli(*QUICK, "model.hidden=[1000000,1000000]", f"hydra.run.dir={tmp_path}")
    assert res.returncode == 1
    assert _stderr_lines(res) == [_stderr_lines(res)[0]]
    assert _stderr_lines(res)[0].startswith("initsweep: error: out of memory (DefaultCPUAllocator")
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "failed"


# --- a full disk ------------------------------------------------------------------------------


def _full_disk_run(tmp_path: Path, how: str) -> tuple[subprocess.CompletedProcess, dict]:
    """A job whose disk fills up after init: a 120 KiB tmpfs (where we may mount one), or a
    file size limit (EFBIG, for every user)."""
    out, preexec = tmp_path / "run", None
    if how == "tmpfs":
        disk = tmp_path / "disk"
        disk.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=120k", "tmpfs", str(disk)])
        if mounted.returncode != 0:
            pytest.skip("cannot mount a tmpfs here")
        out = disk / "run"
    else:

        def preexec():
            import resource
            import signal

            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
            resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))

    try:
        res = subprocess.run(
            [sys.executable, "-m", "initsweep", "trainer.epochs=2", "trainer.progress=false"]
            # the disk fills on the largest write, the checkpoint's temporary file, whose removal
            # leaves room for status.json (status is best effort: a disk full to the byte has none)
            + [f"hydra.run.dir={out}", "trainer.checkpoint_every=1"],
            cwd=REPO,
            capture_output=True,
            text=True,
            preexec_fn=preexec,
            timeout=300,
        )
        files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    finally:
        if how == "tmpfs":
            subprocess.run(["umount", str(tmp_path / "disk")])
    return res, files


@pytest.mark.slow
@pytest.mark.parametrize("how", ["tmpfs", "rlimit"])
def test_a_full_disk_is_one_line_a_status_and_no_temporary_files(tmp_path, how):
    res, files = _full_disk_run(tmp_path, how)
    assert res.returncode == 1
    (line,) = [ln for ln in _stderr_lines(res) if not ln.startswith("Error executing job")]
    why = "No space left on device" if how == "tmpfs" else "File too large"
    assert line.startswith("initsweep: error: cannot write ") and why in line
    assert "Traceback" not in res.stderr
    assert not [name for name in files if name.endswith(".tmp")]
    assert "summary.json" not in files
    status = json.loads(files["status.json"])
    assert status["status"] == "failed" and why in status["error"]
    assert all(json.loads(ln) for ln in files["metrics.jsonl"].decode().splitlines())


# --- damaged files of an earlier run ----------------------------------------------------------


def test_a_truncated_checkpoint_names_the_file_to_delete(make_cfg, tmp_path):
    run(make_cfg(*QUICK, "seeds=[0]"))
    ckpt = tmp_path / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    (tmp_path / "summary.json").unlink()
    metrics = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(ConfigError) as err:
        run(make_cfg(*QUICK, "seeds=[0]"))
    assert str(err.value).startswith(f"checkpoint {ckpt} cannot be resumed from: it is damaged")
    assert str(err.value).endswith("delete it to train this job from the start")
    assert (tmp_path / "metrics.jsonl").read_text() == metrics  # nothing lost meanwhile
    ckpt.unlink()
    run(make_cfg(*QUICK, "seeds=[0]"))  # as the message says
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "finished"


def test_a_crafted_checkpoint_is_refused_in_initsweeps_words(make_cfg, tmp_path):
    import torch

    marker = tmp_path / "marker"
    torch.save({"epoch": 1, "payload": _Payload(marker)}, tmp_path / "checkpoint.pt")
    with pytest.raises(ConfigError) as err:
        run(make_cfg(*QUICK, "seeds=[0]"))
    message = str(err.value)
    assert "holds objects other than tensors and plain containers" in message
    assert "weights_only" not in message and "unsafe" not in message.lower()
    assert not marker.exists()


def test_a_corrupt_summary_does_not_stop_a_rerun(make_cfg, tmp_path):
    first = run(make_cfg(*QUICK, "seeds=[0]"))
    (tmp_path / "summary.json").write_text('{"status": "fin')  # torn by another program
    again = run(make_cfg(*QUICK, "seeds=[0]"))  # resumes from the last checkpoint
    assert again == first
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "finished"


# --- SIGTERM to a joblib multirun -------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_to_a_joblib_multirun_ends_every_job_cleanly(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "initsweep", "-m", "trainer.epochs=30", "trainer.batch_size=8"]
        + ["model.hidden=[256,256]", "trainer.progress=false", "optimizer.lr=0.1,0.05"]
        + ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp_path}"]
        + ["trainer.checkpoint_every=1"],  # a checkpoint after the first epoch, not by time
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for job in ("0", "1"):
        _wait_for(tmp_path / job / "checkpoint.pt", proc)
    proc.terminate()  # SIGTERM to the launching process only, as `kill <pid>` does
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143
    assert "Traceback" not in stderr
    assert "initsweep: interrupted by SIGTERM" in stderr
    for job in ("0", "1"):
        assert json.loads((tmp_path / job / "status.json").read_text()) == {
            "status": "interrupted"
        }
        assert not (tmp_path / job / "summary.json").exists()
