"""The always-on tracker: plain files in the job's output directory (``initsweep/files.py``).

``metrics.jsonl`` is appended and flushed as training goes; ``init.json`` holds the step-0
diagnostics; ``histograms.jsonl`` the per-layer histograms (one JSON per seed, step and tensor);
``summary.json`` is written atomically last, so its presence means the job finished.
"""

from __future__ import annotations

import json
from pathlib import Path

from initsweep.files import HISTOGRAMS, INIT, METRICS, STATUS, SUMMARY, write_json_atomic
from initsweep.track.histograms import Histogrammer


class FilesTracker:
    """Writes ``metrics.jsonl``, ``init.json``, ``histograms.jsonl`` and ``summary.json``.

    ``log_model`` appends per-layer histograms of every copy (weights, biases, and activations on
    a fixed batch) when ``histograms`` says they are due; copy i is seed ``seeds[i]``. Without
    ``histograms`` none are written.
    """

    def __init__(
        self,
        output_dir: str | Path,
        seeds: list[int] | None = None,
        histograms: Histogrammer | None = None,
    ) -> None:
        self.dir = Path(output_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._metrics = open(self.dir / METRICS, "a")
        self.seeds, self.histograms = seeds, histograms

    def log_init(self, init: dict) -> None:
        write_json_atomic(self.dir / INIT, init)

    def log_metrics(self, records: list[dict]) -> None:
        for r in records:
            self._metrics.write(json.dumps(r) + "\n")
        self._metrics.flush()

    def log_model(self, step: int, epoch: int, pop) -> None:
        if self.histograms is None or self.seeds is None or not self.histograms.due(epoch):
            return
        with open(self.dir / HISTOGRAMS, "a") as f:
            for i, seed in enumerate(self.seeds):
                for h in self.histograms.of(pop, i, step):
                    f.write(json.dumps({"seed": seed, "step": step, "epoch": epoch, **h.record()}))
                    f.write("\n")

    def log_summary(self, summary: dict) -> None:
        write_json_atomic(self.dir / SUMMARY, summary)

    def finish(self, status: str = "finished") -> None:
        """Close the metrics file; a job that ends otherwise leaves ``status.json`` saying how
        (failed, interrupted), so a report can tell it from one still running."""
        self._metrics.close()
        marker = self.dir / STATUS
        if status == "finished":
            marker.unlink(missing_ok=True)
        else:
            write_json_atomic(marker, {"status": status})
