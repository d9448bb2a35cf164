"""The W&B tracker: one run per seed, offline by default (``tracker=wandb``).

Every run lives in ``<job dir>/wandb/``. Offline runs need no account and touch no network:
browse them with ``wandb leet <job dir>/wandb`` and upload them later with ``wandb sync``.
A run's id is derived from (job dir, seed) and opened with ``resume="allow"``, so a job that is
resumed in the same directory continues its runs instead of making duplicates.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from pathlib import Path

from initsweep.errors import ConfigError, first_line, invalid
from initsweep.track.histograms import Histogrammer

log = logging.getLogger("initsweep")
MODES = ("offline", "online", "disabled")
# W&B's server limits; offline runs accept more, but `wandb sync` then fails (wandb/wandb#6402)
MAX_JOB_TYPE, MAX_GROUP, MAX_TAG = 64, 128, 64


def run_id(output_dir: str | Path, seed: int) -> str:
    """A stable W&B run id from (absolute job dir, seed): same job, same run."""
    return hashlib.sha1(f"{Path(output_dir).resolve()}|{seed}".encode()).hexdigest()[:16]


def hydra_job() -> tuple[list[str], str | None]:
    """The job's command-line overrides and its sweep dir (``None`` outside a multirun).

    Outside a Hydra app (the compose API in tests) there is no HydraConfig: no overrides.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return [], None
    hc = HydraConfig.get()
    sweep_dir = hc.sweep.dir if hc.mode == RunMode.MULTIRUN else None
    return list(hc.overrides.task), sweep_dir


def _fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters; a cut one ends in a hash of the whole, so two long
    values that share a prefix stay distinct."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 9]}~{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def job_type(overrides: Sequence[str]) -> str:
    """The job's overrides without the seeds: the runs of one configuration share a job type."""
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in ("seeds", "seed")]
    return _fit(",".join(kept) or "defaults", MAX_JOB_TYPE)


def study_group(name: str, sweep_dir: str | None) -> str:
    """The study: a multirun's sweep dir (``<date>/<time>`` under outputs/multirun), else ``name``."""
    if sweep_dir is None:
        return _fit(name, MAX_GROUP)
    return _fit(f"{name}:{'/'.join(Path(sweep_dir).parts[-2:])}", MAX_GROUP)


def _scalars(prefix: str, row: dict) -> dict[str, float]:
    """The finite-or-NaN numbers of ``row`` under ``prefix/`` (bools and strings are dropped)."""
    return {
        f"{prefix}/{k}": float(v)
        for k, v in row.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


class WandbTracker:
    """One W&B run per seed of a job, all opened from this process (``reinit="create_new"``).

    Logs every record of ``metrics.jsonl`` at its own step and with its own keys; the step-0
    diagnostics of ``init.json`` under ``init/``; per-layer histograms of weights, biases and
    activations (``weights/<param>``, ``activations/<layer>``) and each weight's std
    (``weight_std/<param>``) when ``histograms`` says they are due; and the job's summary.
    """

    def __init__(
        self,
        output_dir: str | Path,
        seeds: Sequence[int],
        *,
        config: dict,
        names: Sequence[str],
        project: str = "initsweep",
        entity: str | None = None,
        mode: str = "offline",
        group: str = "default",
        job_type: str = "defaults",
        tags: Sequence[str] = (),
        histograms: Histogrammer | None = None,
    ) -> None:
        if mode not in MODES:
            raise invalid("tracker.mode", mode, f"use one of {', '.join(MODES)}")
        import wandb  # imported here: a job without tracker=wandb never pays for it

        self._wandb = wandb
        self.histograms = histograms
        self.runs: dict[int, object] = {}
        self.dir = Path(output_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        settings = wandb.Settings(
            console="off",  # several runs share this process's stdout: keep it out of them
            x_disable_stats=True,  # one system-metrics sampler per seed would cost CPU, not tell
            quiet=True,  # one line of our own instead of a banner per seed
        )
        try:
            for seed, name in zip(seeds, names):
                self.runs[seed] = wandb.init(
                    project=project,
                    entity=entity,
                    dir=str(self.dir),
                    mode=mode,
                    group=group,
                    job_type=job_type,
                    name=name,
                    tags=[_fit(t, MAX_TAG) for t in tags],
                    config={**config, "seed": seed},
                    id=run_id(self.dir, seed),
                    resume="allow",
                    reinit="create_new",
                    settings=settings,
                )
        except Exception as e:  # e.g. online without `wandb login`: say so in one line
            self.finish("failed")
            first = first_line(e)
            raise ConfigError(
                f"tracker.mode={mode!r}: W&B could not start a run ({first}); "
                "run `wandb login` or use tracker.mode=offline"
            ) from e
        if mode == "offline":
            log.info(
                "W&B: %d offline runs in %s (browse: wandb leet %s; upload: wandb sync %s/offline-run-*)",
                len(self.runs),
                self.dir / "wandb",
                self.dir / "wandb",
                self.dir / "wandb",
            )

    def _run(self, seed: int):
        return self.runs.get(seed)

    def log_init(self, init: dict) -> None:
        """Step 0: expected vs measured loss at init, and each layer's statistics."""
        for row in init.get("seeds", []):
            run = self._run(row.get("seed"))
            if run is None:
                continue
            data = {
                f"init/{k}": row[k]
                for k in ("expected_loss", "measured_loss", "excess")
                if isinstance(row.get(k), (int, float))
            }
            for layer in row.get("layers") or []:
                name = layer.get("param") or layer.get("name")
                stats = {k: v for k, v in layer.items() if k not in ("name", "param", "shape")}
                for key, value in _scalars("init", stats).items():
                    data[f"{key}/{name}"] = value  # init/weight_std/body.1.weight, ...
            run.log(data, step=0)

    def log_metrics(self, records: list[dict]) -> None:
        """Each metrics.jsonl record into its seed's run, at its step, with the same keys."""
        for r in records:
            run = self._run(r["seed"])
            if run is not None:
                run.log({k: v for k, v in r.items() if k not in ("seed", "step")}, step=r["step"])

    def log_model(self, step: int, epoch: int, pop) -> None:
        """Histograms of every copy's weights, biases and activations, at init and when due."""
        if self.histograms is None or not self.histograms.due(epoch):
            return
        for i, seed in enumerate(self.runs):
            data: dict = {}
            for h in self.histograms.of(pop, i, step):
                if not h.counts:  # a diverged copy: nothing finite to draw
                    continue
                section = "activations" if h.kind == "activation" else "weights"
                data[f"{section}/{h.name}"] = self._wandb.Histogram(
                    np_histogram=(h.counts, h.edges)
                )
                if h.kind == "weight" and math.isfinite(h.std):
                    data[f"weight_std/{h.name}"] = h.std
            self.runs[seed].log(data, step=step)

    def log_summary(self, summary: dict) -> None:
        """Final metrics, divergence and the job's objective in each run's summary."""
        for entry in summary.get("seeds", []):
            run = self._run(entry["seed"])
            if run is None:
                continue
            run.summary.update(
                {
                    **entry.get("metrics", {}),
                    "diverged": entry.get("diverged", False),
                    "diverged_step": entry.get("diverged_step"),
                    "objective": summary.get("objective", {}),
                    "status": summary.get("status"),
                }
            )

    def finish(self, status: str = "finished") -> None:
        """Close every run, also when the job failed (then with exit code 1)."""
        exit_code = 0 if status == "finished" else 1
        runs, self.runs = self.runs, {}
        for run in runs.values():
            try:
                run.summary["status"] = status  # finished | failed | interrupted
                run.finish(exit_code=exit_code)
            except Exception as e:  # never hide the job's own error behind a tracker's
                log.warning("W&B: could not finish run %s: %s", getattr(run, "id", "?"), e)
