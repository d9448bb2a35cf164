"""What a tracker offers, what a job tells it, and the fan-out that hands a job's calls to
several trackers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from initsweep.track.histograms import Histogrammer
    from initsweep.track.naming import RunLayout


@dataclass(frozen=True)
class TrackedJob:
    """What a job tells each tracker it builds, besides the tracker's own settings.

    Built by ``initsweep.job.build.make_trackers``, which instantiates every ``_target_`` node
    under ``tracker`` (``tracker.wandb``, ``tracker.tensorboard``, ...) as a partial and calls it
    with this one argument: a tracker is a class ``Name(job: TrackedJob, *, settings...)`` whose
    keyword-only settings its yaml sets (and :func:`initsweep.signature.target_schema` types).
    """

    output_dir: Path  # the job's dir
    seeds: tuple[int, ...]  # copy i of the population the tracker is shown is seed seeds[i]
    layout: RunLayout  # the runs' study, arm and names (initsweep.track.naming)
    config: dict = field(default_factory=dict)  # the job's whole resolved config
    metrics: tuple[str, ...] = ()  # the metric keys the job logs
    tags: tuple[str, ...] = ()  # the config's top-level tags
    histograms: Histogrammer | None = None  # when and what to histogram (None: never)
    first_step: int = 0  # the first step logged: 0, or the step after a resumed checkpoint's


@runtime_checkable
class Tracker(Protocol):
    """A destination for one job's records (``initsweep.track.files.FilesTracker`` always; the
    ``tracker`` group's ``_target_`` classes, built with a :class:`TrackedJob`, besides).

    Who calls what: the runner (``initsweep.job.runner``) calls :meth:`log_init` once with the
    step-0 diagnostics (``init.json``), :meth:`log_summary` once with ``summary.json`` and
    :meth:`finish` always, also when the job fails or is interrupted; the training loop
    (``initsweep.train.loop.fit``) calls :meth:`log_metrics` with every batch of
    ``metrics.jsonl`` records and :meth:`log_model` at step 0 and after each epoch, where a
    tracker may take histograms of the population's copies (``pop.module(i)``).
    """

    def log_init(self, init: dict) -> None: ...

    def log_metrics(self, records: list[dict]) -> None: ...

    def log_model(self, step: int, epoch: int, pop) -> None: ...

    def log_summary(self, summary: dict) -> None: ...

    def finish(self, status: str = "finished") -> None: ...


class Trackers:
    """Every call of :class:`Tracker`, handed to each tracker in order (files first).

    The fan-out is written out method by method, so a call the contract does not have is an
    ``AttributeError``, never silently dropped. :meth:`finish` reaches every tracker even when
    one of them raises; the first error is raised after.
    """

    def __init__(self, trackers: Sequence[Tracker]) -> None:
        for t in trackers:
            if not isinstance(t, Tracker):
                raise TypeError(f"{type(t).__name__} does not implement the Tracker contract")
        self.trackers = list(trackers)

    def log_init(self, init: dict) -> None:
        for t in self.trackers:
            t.log_init(init)

    def log_metrics(self, records: list[dict]) -> None:
        for t in self.trackers:
            t.log_metrics(records)

    def log_model(self, step: int, epoch: int, pop) -> None:
        for t in self.trackers:
            t.log_model(step, epoch, pop)

    def log_summary(self, summary: dict) -> None:
        for t in self.trackers:
            t.log_summary(summary)

    def finish(self, status: str = "finished") -> None:
        errors = []
        for t in self.trackers:
            try:
                t.finish(status)
            except Exception as e:  # the others must still close their files and runs
                errors.append(e)
        if errors:
            raise errors[0]
