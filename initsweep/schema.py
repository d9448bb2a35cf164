"""What a config key means, declared on the schema field that types it.

Besides its type, a key of a structured config (:mod:`initsweep.config`) carries its meaning as
dataclass field metadata, written with :func:`key`:

- ``volatile``: a resumed job may change it without changing its numbers (where it logs, how
  it shows progress); the checkpoint and the finished-job check skip it;
- ``per_job``: it may differ between the jobs that train as one population (``job/group.py``);
- ``arm``: it is part of what names an arm of a sweep (W&B groups, TensorBoard runs); a
  volatile key never is;
- ``bookkeeping``: a sweeper sets it for each job (a search trial's number and study): it
  varies between jobs but is never a factor of the study (the report);
- ``names_file``: its value names a file (the study's database), so it must be a plain name.

The lists the rest of initsweep reads (``VOLATILE``, ``PER_JOB``, ...) are derived from these
fields by :func:`keys_where`, never written by hand. No torch and no Hydra here: the report
reads :class:`SearchConfig`'s meaning too.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Optional

from omegaconf import MISSING

META = "initsweep"  # the metadata key a field's meaning lives under
FLAGS = ("volatile", "per_job", "arm", "bookkeeping", "names_file")


def key(
    default: Any = MISSING,
    *,
    factory: Any = None,
    volatile: bool = False,
    per_job: bool = False,
    arm: bool | None = None,
    bookkeeping: bool = False,
    names_file: bool = False,
    parts: type | None = None,
) -> Any:
    """A schema field with its meaning (see the module's docstring); ``arm`` defaults to
    ``not volatile``. ``parts`` declares the meaning of keys inside a node the schema leaves
    untyped (the optimizer's arguments): a dataclass that is read for its meaning only."""
    meaning = {
        "volatile": volatile,
        "per_job": per_job,
        "arm": (not volatile) if arm is None else arm,
        "bookkeeping": bookkeeping,
        "names_file": names_file,
        "parts": parts,
    }
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={META: meaning})
    return dataclasses.field(default=default, metadata={META: meaning})


def meaning_of(field: dataclasses.Field) -> dict[str, Any]:
    """A field's meaning; a field declared without :func:`key` means nothing special."""
    return field.metadata.get(META) or key().metadata[META]


def _schema_in(annotation: Any) -> type | None:
    """The dataclass an annotation names, also inside ``Optional[...]``."""
    if dataclasses.is_dataclass(annotation):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        found = [a for a in typing.get_args(annotation) if dataclasses.is_dataclass(a)]
        return found[0] if len(found) == 1 else None
    return None


def keys_where(schema: type, flag: str, value: bool = True, prefix: str = "") -> tuple[str, ...]:
    """The dotted keys of ``schema`` whose meaning has ``flag == value``.

    A key found stands for everything under it (``tracker`` covers ``tracker.wandb.mode``);
    below a key not found, its own schema's fields (or the ``parts`` its meaning names) are
    searched in turn.
    """
    if flag not in FLAGS:
        raise ValueError(f"unknown meaning {flag!r}; one of {', '.join(FLAGS)}")
    hints = typing.get_type_hints(schema)
    found: list[str] = []
    for field in dataclasses.fields(schema):
        meaning, path = meaning_of(field), f"{prefix}{field.name}"
        if meaning[flag] == value:
            found.append(path)
            continue
        below = meaning["parts"] or _schema_in(hints[field.name])
        if below is not None:
            found += keys_where(below, flag, value, f"{path}.")
    return tuple(found)


@dataclass
class SearchConfig:
    """``search``: an Optuna search's study (``search=gain`` and the other presets fill it).

    The sweeper gives each trial its study's name, storage and trial number as overrides: they
    differ between a search's jobs but say nothing about the arms (``bookkeeping``).
    """

    # one study per name; it names the study's database, outputs/optuna/<study_name>.db
    study_name: str = key(bookkeeping=True, names_file=True)
    storage: str = key(bookkeeping=True)  # an Optuna RDB URL or a journal file
    pruner: Any = None  # a _target_ node (optuna.pruners.*); null never prunes
    trial: Optional[int] = key(None, bookkeeping=True)  # noqa: UP045 (OmegaConf) set per job


@dataclass
class OptimizerNumbers:
    """The numbers initsweep reads of ``optimizer``, a torch optimizer's ``_target_`` node that
    is otherwise untyped (each optimizer takes its own arguments). Typed when the job spec is
    read; each may differ between the copies of one population, which
    ``initsweep.train.optim.build_stacked_optimizer`` steps each with its own."""

    lr: float = key(per_job=True)
    momentum: float = key(per_job=True)
    weight_decay: float = key(per_job=True)
