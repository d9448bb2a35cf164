"""The TensorBoard tracker: event files per seed through ``torch.utils.tensorboard``
(``tracker=tensorboard``).

Seed ``s`` of a job writes to ``<job dir>/tensorboard/<run name>/``, the run name being W&B's
(:mod:`initsweep.track.naming`: what varies in the sweep, plus ``s<seed>``), so
``tensorboard --logdir <sweep dir>`` lists every arm's seeds as ``<job>/tensorboard/<name>`` and
its run filter picks an arm by its overrides. Scalars and histograms go under the same keys as
in W&B (:mod:`initsweep.track.keys`).
"""

from __future__ import annotations

from pathlib import Path

from initsweep.track.base import TrackedJob
from initsweep.track.histograms import Histogram
from initsweep.track.keys import histogram_key, histogram_scalars, init_scalars, metric_scalars

TENSORBOARD = "tensorboard"  # the job's subdir of event files


def _add_histogram(writer, tag: str, h: Histogram, step: int) -> None:
    """One of our histograms as TensorBoard's raw histogram (its buckets are our bins, each
    named by its upper edge)."""
    n = sum(h.counts)
    writer.add_histogram_raw(
        tag,
        min=h.edges[0],
        max=h.edges[-1],
        num=n,
        sum=n * h.mean,
        sum_squares=h.sum_squares,
        bucket_limits=h.edges[1:],
        bucket_counts=h.counts,
        global_step=step,
    )


class TensorBoardTracker:
    """One ``SummaryWriter`` per seed: every ``metrics.jsonl`` scalar at its step, the step-0
    diagnostics under ``init/``, and the histograms at step 0 and when ``histograms`` says.

    ``tracker=tensorboard`` (``conf/tracker/tensorboard.yaml``) sets ``flush_secs``: how often
    the events reach the disk while training. The job's ``first_step`` is the first step this
    run logs (0, or the step after the checkpoint it resumes from): TensorBoard hides the events
    a killed run wrote from there on, as the files tracker drops them, so a resumed job shows
    each point once.
    """

    def __init__(self, job: TrackedJob, *, flush_secs: int = 30) -> None:
        from torch.utils.tensorboard import SummaryWriter  # only a job with tensorboard pays

        self.dir = Path(job.output_dir) / TENSORBOARD
        self.histograms = job.histograms
        self.writers = {
            seed: SummaryWriter(
                str(self.dir / job.layout.dir_name(seed)),
                flush_secs=flush_secs,
                purge_step=job.first_step,
            )
            for seed in job.seeds
        }

    def _scalars(self, seed: int, data: dict[str, float], step: int) -> None:
        writer = self.writers.get(seed)
        if writer is not None:
            for key, value in data.items():
                writer.add_scalar(key, value, step)

    def log_init(self, init: dict) -> None:
        for row in init.get("seeds", []):
            self._scalars(row.get("seed"), init_scalars(row), 0)

    def log_metrics(self, records: list[dict]) -> None:
        for r in records:
            self._scalars(r["seed"], metric_scalars(r), r["step"])

    def log_model(self, step: int, epoch: int, pop) -> None:
        if self.histograms is None or not self.histograms.due(epoch):
            return
        for i, (seed, writer) in enumerate(self.writers.items()):
            for h in self.histograms.of(pop, i, step):
                if h.counts:  # a diverged copy has nothing finite to draw
                    _add_histogram(writer, histogram_key(h), h, step)
                self._scalars(seed, histogram_scalars(h), step)

    def log_summary(self, summary: dict) -> None:
        for writer in self.writers.values():
            writer.flush()

    def finish(self, status: str = "finished") -> None:
        writers, self.writers = self.writers, {}
        for writer in writers.values():
            writer.close()
