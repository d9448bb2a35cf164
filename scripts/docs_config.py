"""Every config group, option and key, composed by Hydra (``scripts/docs_reference.py``).

For each group a user picks, each option is composed as ``initsweep-train group=option`` would
compose it, and every key under the group is listed with its type and allowed values (from the
structured configs in :mod:`initsweep.config` and the scheme schemas), its default, and the
comment the key carries in its yaml (or dataclass field). Groups that place their keys at the
top (``experiment``, ``search``) and Hydra's launchers and sweepers are listed by option, with
the first comment line of their yaml.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import re
import typing
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

KEY = re.compile(r"^(\s*)([\w.-]+):\s*([^#]*?)\s*(?:#\s*(.*))?$")


def yaml_comments(path: Path) -> dict[str, str]:
    """``{dotted key: its trailing comment}`` of a yaml file (comment-only lines continuing one
    key's comment are joined to it)."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    last = None
    for line in path.read_text().splitlines() if path.is_file() else []:
        m = KEY.match(line)
        if m and not line.lstrip().startswith("#"):
            indent, key, _value, comment = len(m.group(1)), m.group(2), m.group(3), m.group(4)
            stack = [(i, k) for i, k in stack if i < indent]
            dotted = ".".join([k for _, k in stack] + [key])
            stack.append((indent, key))
            if comment:
                comments[dotted] = comment.strip()
            last = dotted if comment else None
        elif last and line.strip().startswith("#") and line.index("#") > 10:
            comments[last] += " " + line.strip().lstrip("#").strip()
        else:
            last = None
    return comments


def field_comments(cls: type) -> dict[str, str]:
    """A dataclass's fields' help: field metadata ``help``, else the comment on its line."""
    comments = {}
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        source = ""
    for f in dataclasses.fields(cls):
        text = f.metadata.get("help") if f.metadata else None
        m = re.search(rf"^\s*{f.name}\s*:[^#\n]*#\s*(.*)$", source, re.M)
        if not text and m:
            text = re.sub(r"^noqa: \S+ \(OmegaConf\)\s*(#\s*)?", "", m.group(1)).strip()
        if text:
            comments[f.name] = text
    return comments


def _type_name(ref: typing.Any) -> tuple[str, list[str]]:
    """(a readable type, its allowed values if it is a choice)."""
    if isinstance(ref, type) and issubclass(ref, enum.Enum):
        return "choice", [m.name for m in ref]
    origin, args = typing.get_origin(ref), typing.get_args(ref)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args), []
    if origin is typing.Union:
        names = [_type_name(a) for a in args if a is not type(None)]
        allowed = [v for _, vals in names for v in vals]
        return " | ".join(n for n, _ in names), allowed
    return getattr(ref, "__name__", str(ref)), []


def _default(node) -> str:
    value = node._value() if hasattr(node, "_value") else node
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(node, (DictConfig, ListConfig)):
        return json.dumps(OmegaConf.to_container(node)) if len(node) else "[]"
    return "null" if value is None else str(value)


def leaf_rows(cfg: DictConfig, prefix: str, comments: dict[str, str], root: str = "") -> list:
    """``(key, type, default, allowed, comment)`` of every leaf under ``cfg`` (at ``prefix``);
    ``comments`` are keyed relative to ``root``, the group the yaml fills."""
    rows = []
    schema = OmegaConf.get_type(cfg)
    described = field_comments(schema) if dataclasses.is_dataclass(schema) else {}
    for key in cfg:
        node = cfg._get_node(key)
        dotted = f"{prefix}.{key}" if prefix else str(key)
        relative = dotted[len(root) + 1 :] if root else dotted
        comment = comments.get(relative, described.get(key, ""))
        if isinstance(node, DictConfig) and not node._is_none() and len(node):
            rows += leaf_rows(node, dotted, comments, root)
            continue
        ref = node._metadata.ref_type
        if ref is typing.Any:
            value = node._value()
            kind = "list" if isinstance(node, ListConfig) else type(value).__name__
            kind = "any" if value is None else kind
            type_name, allowed = kind, []
        else:
            type_name, allowed = _type_name(ref)
        if node._metadata.optional and "null" not in type_name and ref is not typing.Any:
            type_name += " | null"
        rows.append((dotted, type_name, _default(node), allowed, comment))
    return rows


def _table(rows: list[tuple]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|")

    out = ["| key | type | default | allowed | what |", "| --- | --- | --- | --- | --- |"]
    for key, type_name, default, allowed, comment in rows:
        values = ", ".join(f"`{v}`" for v in allowed)
        out.append(
            f"| `{key}` | {cell(type_name)} | `{cell(default)}` | {values} | {cell(comment)} |"
        )
    return "\n".join(out) + "\n"


def _lead_comment(path: Path) -> str:
    for line in path.read_text().splitlines() if path.is_file() else []:
        if line.startswith("#") and "@package" not in line:
            return line.lstrip("#").strip()
        if not line.startswith("#"):
            break
    return "(a Hydra plugin's own config)"


def config_reference() -> str:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from initsweep.config import CONF_DIR
    from initsweep.help import _shown

    parts = []
    with initialize_config_dir(config_dir=str(CONF_DIR)):
        hydra = GlobalHydra.instance().hydra
        groups = sorted(g for g in hydra.list_all_config_groups() if _shown(g))
        base = compose("train")
        top = DictConfig({k: base[k] for k in base if k not in groups and k != "hydra"})
        parts.append("## Top-level keys\n\n`initsweep/conf/train.yaml`\n")
        parts.append(_table(leaf_rows(top, "", yaml_comments(CONF_DIR / "train.yaml"))))
        for group in groups:
            options = sorted(hydra.config_loader.get_group_options(group))
            parts.append(f"## `{group}`\n")
            if group not in base:
                parts += [
                    f"- `{group}={o}`: {_lead_comment(CONF_DIR / group / f'{o}.yaml')}"
                    for o in options
                ]
                parts.append("")
                continue
            for option in options:
                cfg = compose("train", overrides=[f"{group}={option}"])
                comments = yaml_comments(CONF_DIR / group / f"{option}.yaml")
                parts.append(f"### `{group}={option}`\n")
                parts.append(_table(leaf_rows(cfg[group], group, comments, group)))
    return "\n".join(parts)
