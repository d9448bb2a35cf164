"""Trackers: where a job's metrics, init diagnostics, histograms and summary go.

:class:`Tracker` is the contract; :class:`FilesTracker` (always on),
:class:`~initsweep.track.wandb.WandbTracker` (``tracker=wandb``) and
:class:`~initsweep.track.tensorboard.TensorBoardTracker` (``tracker=tensorboard``) keep it, and
:class:`Trackers` hands each call to every tracker of a job.
"""

from initsweep.track.base import Tracker, Trackers
from initsweep.track.files import FilesTracker

__all__ = ["FilesTracker", "Tracker", "Trackers"]
