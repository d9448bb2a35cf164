"""What a config may build: the ``_target_`` allow-lists, checked by name before anything runs.

Configs are code: a ``_target_`` names a callable that Hydra imports and calls. initsweep allows
exactly what its own configs need, by full name (:data:`initsweep.config.TARGETS` for a job's
dataset, model and optimizer; :data:`initsweep.config.TRACKER_TARGETS` for its trackers;
:data:`initsweep.config.HYDRA_TARGETS` for what Hydra builds itself), plus the user's own
packages, named in ``allow_targets: [my_project.*]`` or, for one run,
``INITSWEEP_ALLOW_TARGETS=my_project.*``. The standard library and the packages initsweep
runs on can never be allowed: their helpers run shell lines, unpickle files or rewrite a job's
files. Hydra then checks the same list again against the object each name resolves to, so an
alias such as ``my_project.os.system`` is refused too.

The allow-lists are derived, never kept by hand: :func:`shipped_targets` walks the shipped config
tree and collects every ``_target_`` it names, with the key it lands at; a new model or dataset
(a function and its yaml) is allowed because its yaml names it.

No torch, no Hydra here: the CLI and the job layer share these checks and messages.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import yaml

from initsweep.errors import ConfigError, invalid

ENV = "INITSWEEP_ALLOW_TARGETS"  # patterns for one run, comma- or space-separated
# top-level packages no allow_targets pattern may name: the standard library (os, subprocess,
# sys, builtins, shutil, importlib, pickle, socket, ctypes, ...) and what initsweep runs on
NEVER = frozenset(sys.stdlib_module_names) | {
    "initsweep",
    "hydra",
    "hydra_plugins",
    "omegaconf",
    "submitit",
    "optuna",
    "joblib",
    "cloudpickle",
    "dill",
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "sklearn",
    "pandas",
    "pyarrow",
    "wandb",
    "yaml",
    "sqlalchemy",
    "filelock",
    "pip",
    "setuptools",
    "pkg_resources",
    "pytest",
    "_pytest",
}
HOW_TO_ALLOW = (
    f"to build your own code add `allow_targets: [my_project.*]` to your config (or set "
    f"{ENV}=my_project.* for one run); the standard library and the packages initsweep runs on "
    "cannot be allowed"
)


def matches(target: str, patterns: Iterable[str]) -> bool:
    """Hydra's rule: a pattern is a full name, or a package prefix ending in ``.*``."""
    return any(target.startswith(p[:-1]) if p.endswith(".*") else target == p for p in patterns)


def check_pattern(key: str, pattern: object) -> str:
    """One ``allow_targets`` entry: a dotted name or ``package.*``, outside :data:`NEVER`."""
    name = pattern[:-2] if isinstance(pattern, str) and pattern.endswith(".*") else pattern
    if not isinstance(name, str) or not all(p.isidentifier() for p in name.split(".")):
        raise invalid(
            key,
            pattern,
            "name your own package or callable, e.g. my_project.* or my_project.models.TinyNet",
        )
    if name.split(".")[0] in NEVER:
        raise invalid(
            key,
            pattern,
            f"{name.split('.')[0]} is the standard library's or initsweep's own and cannot be "
            "allowed; name your own package, e.g. my_project.*",
        )
    return pattern


def user_patterns(configured: object, environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The checked patterns of ``allow_targets`` (a list or one string) and of :data:`ENV`."""
    if configured is None:
        configured = []
    if isinstance(configured, str):
        configured = [configured]
    if not isinstance(configured, Sequence):
        raise invalid("allow_targets", configured, "give a list, e.g. [my_project.*]")
    patterns = [check_pattern("allow_targets", p) for p in configured]
    patterns += [check_pattern(ENV, p) for p in re.split(r"[,\s]+", environ.get(ENV, "")) if p]
    return tuple(dict.fromkeys(patterns))


def find_targets(node: object, key: str) -> Iterator[tuple[str, object]]:
    """``(key, target)`` of every ``_target_`` in a config node, nested ones included."""
    if isinstance(node, Mapping):
        if "_target_" in node:
            yield f"{key}._target_", node["_target_"]
        for k, v in node.items():
            yield from find_targets(v, f"{key}.{k}")
    elif isinstance(node, Sequence) and not isinstance(node, str):
        for i, v in enumerate(node):
            yield from find_targets(v, f"{key}[{i}]")


def _package(text: str, group: tuple[str, ...]) -> str:
    """Where a config file's content lands (Hydra's rule): its header's ``# @package``, else its
    group's path; ``_global_`` is the root."""
    package = "_group_"
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if line.lstrip("# ").startswith("@package"):
            package = line.split("@package", 1)[1].strip()
    package = package.replace("_group_", ".".join(group))
    return package.removeprefix("_global_").strip(".")


def shipped_targets(conf_dir: Path) -> tuple[tuple[str, str], ...]:
    """``(key, target)`` of every ``_target_`` the config tree under ``conf_dir`` names, the key
    being where the node lands in the composed config (``model._target_``,
    ``tracker.wandb._target_``, ``hydra.callbacks.output_dir_check._target_``). ``local/``
    holds this machine's own values (git-ignored), not shipped ones; a required ``???`` names
    nothing."""
    found = []
    for path in sorted(conf_dir.rglob("*.yaml")):
        group = path.parent.relative_to(conf_dir).parts
        if group[:1] == ("local",):
            continue
        text = path.read_text()
        node = yaml.load(text, Loader=_LOADER) or {}
        if isinstance(node, dict):
            node.pop("defaults", None)
        for key, target in find_targets(node, _package(text, group)):
            if target != "???":
                found.append((key.lstrip("."), target))
    return tuple(found)


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def refused(key: str, target: object, resolved: str | None = None) -> ConfigError:
    """The one line for a ``_target_`` outside the allow-list: what is allowed, how to add."""
    what = f"{key}={target!r}" + (f" (that is {resolved})" if resolved else "")
    if key.startswith("hydra."):
        return ConfigError(
            f"{what} is not allowed: Hydra builds from config only initsweep's own callbacks, "
            f"launchers and sweepers; to use your own callback class set "
            f"{ENV}=my_project.callbacks.MyCallback for the run (the standard library and the "
            "packages initsweep runs on cannot be allowed)"
        )
    return ConfigError(
        f"{what} is not allowed: configs build only what initsweep's own configs name (its "
        f"datasets, models and trackers), torch.optim and torch.nn classes and torchvision.models; "
        f"{HOW_TO_ALLOW}"
    )


def check_node(node: object, key: str, allowed: Sequence[str]) -> None:
    """Refuse, before anything is imported, a node whose ``_target_``s are not all allowed."""
    for k, target in find_targets(node, key):
        if not isinstance(target, str) or not matches(target, allowed):
            raise refused(k, target)


_HYDRA_REFUSAL = re.compile(
    r"Target '([^']+)'(?: \(resolved from '([^']+)'\))?.*?(?:whitelist|blacklisted)", re.S
)
_FULL_KEY = re.compile(r"full_key: (\S+)")


def hydra_refusal(e: BaseException, node_key: str = "") -> ConfigError | None:
    """Hydra's own refusal of a target (several lines, cut at the first by a one-line report)
    as initsweep's one line; ``None`` for any other error. ``node_key``: where the node that
    Hydra built sits in the config (Hydra names keys relative to it)."""
    message = str(e)
    found = _HYDRA_REFUSAL.search(message)
    if found is None:
        return None
    target, written = found.groups()
    full_key = _FULL_KEY.search(message)
    key = ".".join(k for k in (node_key, full_key.group(1) if full_key else "") if k)
    return refused(f"{key}._target_" if key else "_target_", written or target, written and target)
