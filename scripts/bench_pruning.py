"""Wall time of the same Optuna search with and without pruning, measured in one run.

    .venv/bin/python scripts/bench_pruning.py                 # search=gain, 20 trials, digits
    .venv/bin/python scripts/bench_pruning.py --trials 10 -- trainer.epochs=10

Both searches use the same sampler seed, data and trainer; each gets a fresh SQLite study in a
temporary folder. Prints the wall time of each, the trial states, the best value, and the ratio.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState


def run_search(tmp: Path, label: str, trials: int, extra: list[str]) -> tuple[float, optuna.Study]:
    args = [
        sys.executable,
        "-m",
        "initsweep",
        "-m",
        "search=gain",
        f"hydra.sweeper.n_trials={trials}",
        f"hydra.sweep.dir={tmp / label}",
        f"search.storage=sqlite:///{tmp / label}.db",
        "trainer.progress=false",
        *(["search.pruner=null"] if label == "no_pruning" else []),
        *extra,
    ]
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return seconds, optuna.load_study(
        study_name="default-gain", storage=f"sqlite:///{tmp / label}.db"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("extra", nargs="*", help="more overrides for both searches")
    a = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        rows = {}
        for label in ("no_pruning", "pruning"):
            seconds, study = run_search(Path(tmp), label, a.trials, a.extra)
            states = {s.name.lower(): len(study.get_trials(states=(s,))) for s in TrialState}
            rows[label] = (seconds, states, study.best_value)
            print(
                f"{label:>10}: {seconds:6.1f} s  complete {states['complete']:2d}  "
                f"pruned {states['pruned']:2d}  failed {states['fail']:2d}  "
                f"best {study.best_value:.4f}"
            )
    ratio = rows["no_pruning"][0] / rows["pruning"][0]
    print(f"pruning: {ratio:.2f}x faster ({a.trials} trials, overrides {a.extra or 'none'})")


if __name__ == "__main__":
    main()
