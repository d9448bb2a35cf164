"""A structured-config schema made from a class's signature, for ``_target_`` nodes.

A tracker's yaml names its class (``_target_: initsweep.track.wandb.WandbTracker``) and sets
the class's keyword-only arguments; :func:`target_schema` types those keys from the class's own
annotations, so ``tracker.wandb.mode=onlin`` fails when the config is composed, with Hydra's list
of the valid values, and adding a tracker needs no schema written by hand.
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from dataclasses import field, make_dataclass
from enum import Enum
from typing import Any, Optional

from omegaconf import MISSING


def config_type(annotation: Any) -> Any:
    """What OmegaConf can check of an annotation: a primitive or an ``Enum`` (a
    :class:`~initsweep.choice.Choice`) as it is, ``X | None`` as ``Optional[X]``, anything else
    ``Any``."""
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            inner = config_type(args[0])
            return Any if inner is Any else Optional[inner]  # noqa: UP045 (OmegaConf)
        return Any
    if annotation in (int, float, str, bool):
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return annotation
    return Any


def target_schema(target: str, name: str, module: str) -> type:
    """A dataclass ``module.name`` typing a ``_target_`` node of the class ``target``: its
    ``_target_`` and ``_partial_`` (the job adds what the class takes positionally), and each
    keyword-only argument with its annotation and default. Bind it as ``module.name``: a
    pickled config (joblib, submitit) finds it there."""
    where, _, attr = target.rpartition(".")
    cls = getattr(importlib.import_module(where), attr)
    hints = typing.get_type_hints(cls.__init__)
    fields: list[tuple[str, Any, Any]] = [
        ("_target_", str, field(default=target)),
        ("_partial_", bool, field(default=True)),
    ]
    for p in inspect.signature(cls).parameters.values():
        if p.kind is inspect.Parameter.KEYWORD_ONLY:
            default = MISSING if p.default is inspect.Parameter.empty else p.default
            fields.append((p.name, config_type(hints.get(p.name, Any)), field(default=default)))
    schema = make_dataclass(name, fields)
    schema.__module__ = module
    return schema
