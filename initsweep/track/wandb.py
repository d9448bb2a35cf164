"""The W&B tracker: one run per seed, offline by default (``tracker=wandb``).

Every run lives in ``<job dir>/wandb/``. Offline runs need no account and touch no network:
browse them with ``wandb leet <job dir>/wandb`` and upload them later with
``wandb sync <sweep dir>/*/wandb/offline-run-*``. A run's id is derived from (job dir, seed) and opened with
``resume="allow"``, so a job that is resumed in the same directory continues its runs instead of
making duplicates. Where a run goes in W&B's UI (group, job type, name) is
:mod:`initsweep.track.naming`'s.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

from initsweep.choice import make_choice
from initsweep.errors import ConfigError, first_line, invalid
from initsweep.summary import direction
from initsweep.track.base import TrackedJob
from initsweep.track.keys import histogram_key, histogram_scalars, init_scalars, metric_scalars
from initsweep.track.naming import MAX_TAG, fit

log = logging.getLogger("initsweep")
MODES = ("offline", "online", "disabled")
WandbMode = make_choice("WandbMode", MODES, __name__)  # tracker.wandb.mode: typed at compose


def run_id(output_dir: str | Path, seed: int) -> str:
    """A stable W&B run id from (absolute job dir, seed): same job, same run."""
    return hashlib.sha1(f"{Path(output_dir).resolve()}|{seed}".encode()).hexdigest()[:16]


def define_metrics(run, metrics: Sequence[str]) -> None:
    """``step`` is every chart's x axis (``epoch`` is logged beside it, to pick instead); each
    metric's summary keeps its best value (min of a loss, max of an accuracy or AUC) and its
    last."""
    run.define_metric("step")
    run.define_metric("*", step_metric="step")
    for m in metrics:
        run.define_metric(m, summary=f"{'min' if direction(m) == 'minimize' else 'max'},last")


class WandbTracker:
    """One W&B run per seed of a job, all opened from this process (``reinit="create_new"``).

    ``tracker=wandb`` (``conf/tracker/wandb.yaml``) sets ``project``, ``entity``, ``mode`` and
    ``quiet`` (true: W&B prints nothing of its own per run; false: its usual lines);
    :class:`~initsweep.track.base.TrackedJob` says where the job writes and what it logs.

    Logs every record of ``metrics.jsonl`` at its own step and with its own keys; the step-0
    diagnostics of ``init.json`` under ``init/``; per-layer histograms (:mod:`initsweep.track.keys`)
    when ``histograms`` says they are due; and, at the end, the job's summary and the seed's
    finals as a ``wandb.Table`` (``finals``; W&B's table panel joins the rows of the runs shown).
    The job's ``metrics`` are the keys whose summaries :func:`define_metrics` sets.
    """

    def __init__(
        self,
        job: TrackedJob,
        *,
        project: str = "initsweep",
        entity: str | None = None,
        mode: WandbMode = WandbMode.offline,
        quiet: bool = True,
    ) -> None:
        if mode not in MODES:
            raise invalid("tracker.wandb.mode", mode, f"use one of {', '.join(MODES)}")
        import wandb  # imported here: a job without tracker=wandb never pays for it

        self._wandb = wandb
        self.histograms = job.histograms
        self.runs: dict[int, object] = {}
        self._step: dict[int, int] = {}  # each run's last step: the finals go there
        self.dir = Path(job.output_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        settings = wandb.Settings(
            console="off",  # several runs share this process's stdout: keep it out of them
            x_disable_stats=True,  # one system-metrics sampler per seed would cost CPU, not tell
            # W&B's own 3 lines per run (offline, where, `wandb leet`) say what our one line
            # below says once for all the seeds; W&B's errors reach us as exceptions
            silent=quiet,
            quiet=True,
        )
        layout = job.layout
        # the runs table filters and groups by any of these, besides the job's whole config
        keys = {"study": layout.study, "arm": layout.arm, "varying": layout.varying}
        mode = str(mode)
        try:
            for seed in job.seeds:
                self.runs[seed] = run = wandb.init(
                    project=project,
                    entity=entity,
                    dir=str(self.dir),
                    mode=mode,
                    group=layout.group,
                    job_type=layout.study,
                    name=layout.name(seed),
                    tags=[fit(t, MAX_TAG) for t in job.tags],
                    config={**job.config, **keys, "seed": seed},
                    id=run_id(self.dir, seed),
                    resume="allow",
                    reinit="create_new",
                    settings=settings,
                )
                define_metrics(run, job.metrics)
        except Exception as e:  # e.g. online without `wandb login`: say so in one line
            self.finish("failed")
            first = first_line(e)
            raise ConfigError(
                f"tracker.wandb.mode={mode!r}: W&B could not start a run ({first}); "
                "run `wandb login` or use tracker.wandb.mode=offline"
            ) from e
        if mode == "offline":
            log.info(
                "W&B: %d offline runs in %s (browse: wandb leet %s; upload: wandb sync %s)",
                len(self.runs),
                self.dir / "wandb",
                self.dir / "wandb",
                self.dir / "wandb" / "offline-run-*",
            )

    def _log(self, seed: int, data: dict, step: int, epoch: int) -> None:
        run = self.runs.get(seed)
        if run is not None:
            run.log({**data, "step": step, "epoch": epoch}, step=step)
            self._step[seed] = step

    def log_init(self, init: dict) -> None:
        """Step 0: expected vs measured loss at init, and each layer's statistics."""
        for row in init.get("seeds", []):
            self._log(row.get("seed"), init_scalars(row), 0, 0)

    def log_metrics(self, records: list[dict]) -> None:
        """Each metrics.jsonl record into its seed's run, at its step, with the same keys."""
        for r in records:
            self._log(r["seed"], metric_scalars(r), r["step"], r["epoch"])

    def log_model(self, step: int, epoch: int, pop) -> None:
        """Histograms of every copy's weights, biases and activations (and gradients), at init
        and when due."""
        if self.histograms is None or not self.histograms.due(epoch):
            return
        for i, seed in enumerate(self.runs):
            data: dict = {}
            for h in self.histograms.of(pop, i, step):
                if h.counts:  # a diverged copy has nothing finite to draw
                    data[histogram_key(h)] = self._wandb.Histogram(
                        np_histogram=(h.counts, h.edges)
                    )
                data.update(histogram_scalars(h))
            self._log(seed, data, step, epoch)

    def log_summary(self, summary: dict) -> None:
        """The job's finals (``final``: a diverged seed's last finite values), divergence and
        objective in each run's summary, beside W&B's own min/max/last of each metric; and the
        seed's finals as one row of the ``finals`` table."""
        metrics = sorted({k for e in summary.get("seeds", []) for k in e.get("metrics", {})})
        for entry in summary.get("seeds", []):
            seed = entry["seed"]
            run = self.runs.get(seed)
            if run is None:
                continue
            finals = entry.get("metrics", {})
            run.summary.update(
                {
                    "final": finals,
                    "diverged": entry.get("diverged", False),
                    "diverged_step": entry.get("diverged_step"),
                    "objective": summary.get("objective", {}),
                    "status": summary.get("status"),
                }
            )
            row = [seed, entry.get("diverged", False), *(finals.get(m) for m in metrics)]
            table = self._wandb.Table(columns=["seed", "diverged", *metrics], data=[row])
            step = self._step.get(seed, 0)
            run.log({"finals": table, "step": step}, step=step)

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
