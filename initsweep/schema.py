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
fields by :func:`keys_where`, never written by hand. What a schema cannot check at compose
time is checked when the job spec is read: a key added with Hydra's ``+`` (:func:`check_keys`),
the numbers of an untyped node (:func:`check_numbers`). No torch and no Hydra here: the report
reads :class:`SearchConfig`'s meaning too.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf

from initsweep.errors import invalid, unknown_key

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


def check_keys(node: DictConfig, where: str = "") -> None:
    """Every key of a typed node is one its schema defines, at every depth: Hydra's ``+`` adds
    any key to a typed node (``+trainer.epoch=3``, ``+bias.hidden_valeu=…``, ``+seed=1``),
    which nothing would read. Untyped nodes (a ``_target_``'s arguments) are checked against
    their callable when built (``initsweep.job.build.check_arguments``)."""
    schema = OmegaConf.get_type(node)
    known = (
        {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else {}
    )
    for name in node:
        path = f"{where}.{name}" if where else str(name)
        if known and name not in known and path != "hydra":  # Hydra's own node: not ours
            raise unknown_key(path, node[name], known)
        child = node._get_node(name)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            check_keys(child, path)


def check_numbers(node: Any, schema: type, where: str) -> None:
    """Each key of an untyped node that ``schema`` declares holds a number (``optimizer.lr``):
    ``optimizer.lr=fast`` is one line naming the key, not a traceback where it is first used."""
    for name in typing.get_type_hints(schema):
        value = node.get(name) if isinstance(node, dict) else None
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise invalid(f"{where}.{name}", value, "must be a number")


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
