"""The always-on tracker: plain files in the job's output directory (see DESIGN.md).

``metrics.jsonl`` is appended and flushed as training goes; ``init.json`` holds the step-0
diagnostics; ``summary.json`` is written atomically last, so its presence means the job finished.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write to a temporary file in the same directory, then rename over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_jsonl(path: Path) -> list[dict]:
    """Records of a metrics file; a torn last line (a killed writer) is skipped."""
    records = []
    with open(path) as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


class FilesTracker:
    """Writes ``metrics.jsonl``, ``init.json`` and ``summary.json`` into ``output_dir``."""

    def __init__(self, output_dir: str | Path) -> None:
        self.dir = Path(output_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._metrics = open(self.dir / "metrics.jsonl", "a")

    def log_init(self, init: dict) -> None:
        write_json_atomic(self.dir / "init.json", init)

    def log_metrics(self, records: list[dict]) -> None:
        for r in records:
            self._metrics.write(json.dumps(r) + "\n")
        self._metrics.flush()

    def log_summary(self, summary: dict) -> None:
        write_json_atomic(self.dir / "summary.json", summary)

    def finish(self, status: str = "finished") -> None:
        self._metrics.close()
