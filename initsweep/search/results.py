"""A study's results in the sweep dir, next to the sweeper's ``optimization_results.yaml``.

``write_study_outputs`` writes ``optuna_trials.csv`` (one row per trial: number, state, value,
params, duration, epochs reported), ``optuna_study.yaml`` (where the study lives, to reopen it),
and the plots ``optuna_history.png``, ``optuna_slice.png`` and, with two or more parameters,
``optuna_importance.png`` (the names are :data:`initsweep.files.STUDY_OUTPUTS`, which the report
reads).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import optuna
from omegaconf import OmegaConf
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from initsweep.files import STUDY_OUTPUTS as OUTPUTS
from initsweep.render import render_table
from initsweep.search.plots import plot_history, plot_importances, plot_slices
from initsweep.search.storage import open_storage

log = logging.getLogger(__name__)


def trial_rows(trials: list[FrozenTrial]) -> list[dict]:
    """One flat row per trial; parameters as ``params_<key>`` like Optuna's trials_dataframe."""
    names = sorted({p for t in trials for p in t.params})
    rows = []
    for t in trials:
        row = {"number": t.number, "state": t.state.name, "value": t.value}
        row.update({f"params_{n}": t.params.get(n) for n in names})
        row["duration_s"] = t.duration.total_seconds() if t.duration else None
        row["epochs_reported"] = t.last_step  # a pruned trial stopped after this epoch
        row["datetime_start"] = t.datetime_start
        row["datetime_complete"] = t.datetime_complete
        rows.append(row)
    return rows


def write_trials_csv(trials: list[FrozenTrial], path: Path) -> Path:
    rows = trial_rows(trials)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["number"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_study_outputs(
    sweep_dir: str | Path, storage: str | BaseStorage | None, study_name: str
) -> list[Path]:
    """Write the trials CSV, ``optuna_study.yaml`` and the plots of a stored study; return paths.

    ``storage`` is a resolved storage location (an RDB URL or a journal file path, see
    :mod:`initsweep.search.storage`) or an Optuna storage object.
    """
    out = Path(sweep_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = storage if isinstance(storage, BaseStorage) else open_storage(storage)
    study = optuna.load_study(study_name=study_name, storage=store)
    trials = study.get_trials(deepcopy=False)
    objective = study.user_attrs.get("objective", "objective")
    label = f"{objective} (mean over seeds)"
    title = f"study {study_name!r}: {len(trials)} trials"
    minimize = study.directions[0] == StudyDirection.MINIMIZE
    info = {
        "study_name": study_name,
        "storage": storage if isinstance(storage, str) else None,
        "objective": objective,
        "directions": [d.name.lower() for d in study.directions],
        "n_trials": len(trials),
        "states": {s.name: sum(t.state == s for t in trials) for s in TrialState},
    }
    written = [out / OUTPUTS["study"], write_trials_csv(trials, out / OUTPUTS["trials"])]
    OmegaConf.save(OmegaConf.create(info), written[0])
    if not any(t.params for t in trials) or len(study.directions) > 1:
        return written  # nothing to plot against (multi-objective: see optuna-dashboard)
    written.append(plot_history(trials, out / OUTPUTS["history"], label, minimize, title))
    written.append(plot_slices(trials, out / OUTPUTS["slice"], label, title))
    names = {p for t in trials for p in t.params}
    if len(names) >= 2:
        try:
            importances = optuna.importance.get_param_importances(study)
        except (ValueError, RuntimeError) as e:  # too few completed trials to fit fANOVA
            log.warning(f"No parameter importances: {e}")
        else:
            written.append(
                plot_importances(importances, out / OUTPUTS["importance"], f"{title}: importances")
            )
    return written


def format_trials_table(study: optuna.Study, title: str = "", top: int = 5) -> str:
    """The best ``top`` trials and the count per state, as a fixed-width table."""
    trials = study.get_trials(deepcopy=False)
    valued = [t for t in trials if t.state == TrialState.COMPLETE]
    reverse = study.directions[0] == StudyDirection.MAXIMIZE
    best = sorted(valued, key=lambda t: t.values[0], reverse=reverse)[:top]
    names = sorted({p for t in trials for p in t.params})
    header = ("trial", "value", *names, "duration")
    rows = [
        (
            str(t.number),
            f"{t.values[0]:.4g}",
            *(_fmt(t.params.get(n)) for n in names),
            f"{t.duration.total_seconds():.1f}s" if t.duration else "",
        )
        for t in best
    ]
    counts = ", ".join(
        f"{sum(t.state == s for t in trials)} {s.name.lower()}"
        for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    )
    out = [render_table(header, rows, title=title)]
    out.append(f"{len(trials)} trials: {counts}")
    return "\n".join(out)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
