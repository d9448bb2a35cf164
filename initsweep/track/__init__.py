"""Trackers: where a job's metrics, init diagnostics and summary go."""

from initsweep.track.files import FilesTracker, read_jsonl, write_json_atomic


class Trackers:
    """Fan one call out to several trackers (files always, W&B when configured)."""

    def __init__(self, trackers: list) -> None:
        self.trackers = trackers

    def __getattr__(self, method: str):
        def call(*args, **kwargs):
            for t in self.trackers:
                fn = getattr(t, method, None)
                if fn is not None:
                    fn(*args, **kwargs)

        return call


__all__ = ["FilesTracker", "Trackers", "read_jsonl", "write_json_atomic"]
