"""A study's results in the sweep dir, next to the sweeper's ``optimization_results.yaml``.

``write_study_record`` writes ``optuna_study.yaml`` when a search starts (where the study lives,
how its storage was given and from which directory), so a sweep dir always says where its study
is; ``write_study_outputs`` adds the trial counts (the pruned ones by the epoch they stopped
after, :mod:`initsweep.search.outcomes`) and the comparison of the best trials across seeds to it
after the search, and writes ``optuna_trials.csv`` (one row per trial: number, state,
value, the per-seed mean, std, n and standard error, params, duration, epochs reported, why it
failed) and the plots ``optuna_history.png``, ``optuna_slice.png`` and, with two or more
parameters, ``optuna_importance.png`` (the names are :data:`initsweep.files.STUDY_OUTPUTS`, which
the report reads).
"""

from __future__ import annotations

import csv
import json
import logging
import warnings
from pathlib import Path

import optuna
import yaml
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from initsweep.files import STUDY_OUTPUTS as OUTPUTS
from initsweep.files import atomic_open
from initsweep.render import render_table
from initsweep.search.outcomes import count_pruned, pruned_line, pruned_record
from initsweep.search.plots import plot_history, plot_importances, plot_slices
from initsweep.search.seeds import (
    TopTrials,
    all_diverged,
    compare_top,
    per_seed,
    standard_error,
)

log = logging.getLogger(__name__)


def trial_rows(trials: list[FrozenTrial]) -> list[dict]:
    """One flat row per trial; parameters as ``params_<key>`` like Optuna's trials_dataframe."""
    names = sorted({p for t in trials for p in t.params})
    rows = []
    for t in trials:
        attrs = t.user_attrs
        row = {"number": t.number, "state": t.state.name}
        if t.values is not None and len(t.values) > 1:  # multi-objective: values_0, values_1, …
            row.update({f"values_{i}": v for i, v in enumerate(t.values)})
        else:
            row["value"] = t.value
        row.update({k: attrs.get(k) for k in ("mean", "std", "n")})
        row["se"] = standard_error(t)
        row["n_diverged"] = attrs.get("n_diverged")
        row["per_seed"] = json.dumps(attrs["per_seed"]) if "per_seed" in attrs else None
        row.update({f"params_{n}": t.params.get(n) for n in names})
        row["duration_s"] = t.duration.total_seconds() if t.duration else None
        row["epochs_reported"] = t.last_step  # a pruned trial stopped after this epoch
        row["datetime_start"] = t.datetime_start
        row["datetime_complete"] = t.datetime_complete
        row["fail_reason"] = attrs.get("fail_reason")
        rows.append(row)
    return rows


def write_trials_csv(trials: list[FrozenTrial], path: Path) -> Path:
    rows = trial_rows(trials)
    with open(path, "w", newline="") as f:
        names = list(dict.fromkeys(k for row in rows for k in row)) or ["number"]
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_study_record(sweep_dir: str | Path, record: dict) -> Path:
    """``optuna_study.yaml``: where the study lives; written when the search starts."""
    path = Path(sweep_dir) / OUTPUTS["study"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as f:
        yaml.safe_dump(record, f, sort_keys=False, allow_unicode=True)
    return path


def top_trials(study: optuna.Study) -> TopTrials | None:
    """The best trials against each other across seeds (single-objective studies)."""
    if len(study.directions) > 1:
        return None
    minimize = study.direction == StudyDirection.MINIMIZE
    return compare_top(study.get_trials(deepcopy=False), minimize)


def write_study_outputs(sweep_dir: str | Path, study: optuna.Study) -> list[Path]:
    """Complete ``optuna_study.yaml`` and write the trials CSV and the plots; return the paths."""
    out = Path(sweep_dir)
    trials = study.get_trials(deepcopy=False)
    path = out / OUTPUTS["study"]
    record = yaml.safe_load(path.read_text()) if path.exists() else {}
    record.update(
        n_trials=len(trials),
        states={s.name: sum(t.state == s for t in trials) for s in TrialState},
        pruned=pruned_record(trials),
    )
    top = top_trials(study)
    if top is not None:
        record["top_trials"] = top.record()
    written = [write_study_record(out, record), write_trials_csv(trials, out / OUTPUTS["trials"])]
    if not any(t.params for t in trials) or len(study.directions) > 1:
        return written  # nothing to plot against (multi-objective: see optuna-dashboard)
    objective = study.user_attrs.get("objective", "objective")
    label = f"{objective} (mean over seeds)"
    title = f"study {study.study_name!r}: {len(trials)} trials"
    minimize = study.direction == StudyDirection.MINIMIZE
    written.append(plot_history(trials, out / OUTPUTS["history"], label, minimize, title))
    written.append(plot_slices(trials, out / OUTPUTS["slice"], label, minimize, title))
    importances = param_importances(study)
    if importances:
        written.append(
            plot_importances(importances, out / OUTPUTS["importance"], f"{title}: importances")
        )
    return written


def param_importances(study: optuna.Study) -> dict[str, float]:
    """fANOVA importances with two or more searched keys and completed trials; ``{}`` without.

    Optuna warns (and under ``-W error`` raises) when it has too little to go on; that is no
    reason for a search to fail, so it is one log line.
    """
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len({p for t in done for p in t.params}) < 2 or len(done) < 2:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError, Warning) as e:  # e.g. too few distinct values for fANOVA
        log.warning(f"No parameter importances: {type(e).__name__}: {e}")
        return {}


def format_trials_table(study: optuna.Study, title: str = "", top: int = 5) -> str:
    """The best ``top`` trials (mean ± s.e. over seeds, and whether each can be told apart from
    the best), the count per state, and the sentence saying which cannot; multi-objective: the
    Pareto front."""
    trials = study.get_trials(deepcopy=False)
    names = sorted({p for t in trials for p in t.params})
    counts = ", ".join(
        f"{sum(t.state == s for t in trials)} {s.name.lower()}"
        for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    )
    diverged = sum(all_diverged(t) for t in trials)
    counts += f" ({diverged} with every seed diverged)" if diverged else ""
    if len(study.directions) > 1:
        front = study.best_trials[:top]
        header = ("trial", "values", *names)
        rows = [
            (str(t.number), ", ".join(f"{v:.4g}" for v in t.values), *_params(t, names))
            for t in front
        ]
        table = render_table(header, rows, title=f"{title} (Pareto front)".strip())
        return f"{table}\n{len(trials)} trials: {counts}"
    compared = top_trials(study)
    apart = {r.number: r for r in compared.rows} if compared else {}
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    best = sorted(done, key=lambda t: t.value, reverse=study.direction == StudyDirection.MAXIMIZE)
    header = ("trial", "value", "± s.e.", "n", "p vs best", *names, "duration")
    rows = [
        (
            str(t.number),
            f"{t.value:.4g}",
            f"{standard_error(t):.2g}" if standard_error(t) is not None else "",
            str(len(per_seed(t))) if per_seed(t) else "",
            _p(apart.get(t.number)),
            *_params(t, names),
            f"{t.duration.total_seconds():.1f}s" if t.duration else "",
        )
        for t in best[:top]
    ]
    out = [render_table(header, rows, title=title), f"{len(trials)} trials: {counts}"]
    pruned = pruned_line(*count_pruned(trials))
    if pruned:
        out.append(pruned)
    if compared is not None:
        out.append(compared.line)
    return "\n".join(out)


def _p(row) -> str:
    if row is None or row.how == "best":
        return ""
    return f"{row.p:.2g}" if row.p is not None else row.how


def _params(t: FrozenTrial, names: list[str]) -> list[str]:
    return [_fmt(t.params.get(n)) for n in names]


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
