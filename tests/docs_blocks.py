"""The code blocks of ``README.md`` and ``docs/``, and how ``tests/test_docs.py`` runs them.

A page's ```` ```bash ````/```` ```sh ```` and ```` ```python ```` blocks run in order, in a
scratch directory of their own, as a reader would type them:

- ``initsweep-train``/``initsweep-probe``/``python -m initsweep`` lines compose: ``--cfg job``
  in process (``tests/conftest.py::run_app``). A multirun (``-m``) composes every value of every
  swept key, those of its preset's ``hydra.sweeper.params`` too; an Optuna interval composes
  at its start. So a renamed key or option fails here, not on a reader's machine.
- ``initsweep-example`` lines run for real (they copy a project); ``cd`` moves into a directory
  that must exist by then.
- ``initsweep-report`` lines run for real on a small real sweep, in the slow test.
- ``make T`` lines: ``T`` must be a target of the ``Makefile``.
- any other line: its program must exist (on ``PATH``, in the venv, or a file of the repo).
- python blocks execute in this process (a fresh namespace each).

A block that truly cannot run here (it needs SLURM, a GPU, a tool that is not a dependency) is
marked on the line before its fence with ``<!-- docs-test: skip <why> -->``; keep such blocks few.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from tests.conftest import REPO, run_app

FENCE = re.compile(r"^```(\w+)\s*$")
SKIP = re.compile(r"^<!-- docs-test: skip (.+?) -->$")
SHELL = ("bash", "sh", "shell")
HYDRA_APPS = ("initsweep-train", "initsweep-probe")


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    skip: str | None  # the reason given in a skip marker


def pages() -> list[Path]:
    """README.md and every page of the site (not the generated includes)."""
    docs = sorted(p for p in (REPO / "docs").rglob("*.md") if "_generated" not in p.parts)
    return [REPO / "README.md", *docs]


def blocks(page: Path) -> list[Block]:
    """The page's shell and python blocks, with any skip marker before them."""
    found, lines = [], page.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
        skip = SKIP.match(before.strip())
        if m.group(1) in (*SHELL, "python"):
            code = "\n".join(lines[i + 1 : end])
            lang = "python" if m.group(1) == "python" else "bash"
            found.append(Block(page, i + 1, lang, code, skip.group(1) if skip else None))
        i = end + 1
    return found


def commands(code: str) -> list[list[str]]:
    """A shell block's commands as argv lists: continuation lines joined, comments dropped,
    ``a && b`` split in two."""
    joined = re.sub(r"\\\n", " ", code)
    out = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            out.append(words[:cut])
            words = words[cut + 1 :]
    return [c for c in out if c]


def split_env(argv: list[str]) -> tuple[dict, list[str]]:
    """``VAR=value cmd ...`` → ({VAR: value}, [cmd, ...])."""
    env = {}
    while argv and re.match(r"^[A-Z_][A-Z0-9_]*=", argv[0]):
        key, value = argv[0].split("=", 1)
        env[key] = value
        argv = argv[1:]
    return env, argv


def _expand(overrides: list[str]) -> list[list[str]]:
    """One override list per value of every swept key (the other keys at their first value)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    first, alternatives = [], []
    for text, o in zip(overrides, parsed):
        if not o.is_sweep_override():
            first.append(text)
            continue
        key = o.get_key_element()
        if type(o.value()).__name__ == "IntervalSweep":  # Optuna's: compose at its start
            first.append(f"{key}={o.value().start}")
            continue
        values = list(o.sweep_string_iterator())
        first.append(f"{key}={values[0]}")
        alternatives += [(len(first) - 1, f"{key}={v}") for v in values[1:]]
    runs = [first]
    for index, text in alternatives:
        runs.append([*first[:index], text, *first[index + 1 :]])
    return runs


def compose(app: str, args: list[str], cwd: Path, env: dict) -> None:
    """Compose a Hydra app's command line as :func:`run_app` would run it (see the module)."""
    if "--cfg" in args or "--help" in args or "-h" in args:
        _ok(run_app(app, *args, cwd=cwd, env=env), app, args)
        return
    multirun = any(a in ("-m", "--multirun") for a in args)
    args = [a for a in args if a not in ("-m", "--multirun")]
    flags, overrides = [], []
    it = iter(args)
    for a in it:  # Hydra's flags that take a value (--config-dir DIR) stay as they are
        if a in ("--config-dir", "-cd", "--config-name", "-cn", "--config-path", "-cp"):
            flags += [a, next(it)]
        elif a.startswith("-"):
            flags.append(a)
        else:
            overrides.append(a)
    runs = _expand(overrides) if multirun else [overrides]
    if multirun:  # the preset's own sweep: hydra.sweeper.params of the composed config
        res = _ok(run_app(app, *flags, *runs[0], "--cfg", "hydra", cwd=cwd, env=env), app, args)
        params = OmegaConf.create(res.stdout).hydra.sweeper.get("params") or {}
        given = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
        preset = [f"{k}={v}" for k, v in params.items() if k not in given]
        runs = [r + p for r in runs for p in (_expand(preset) if preset else [[]])]
    for overrides_of_job in runs:
        _ok(run_app(app, *flags, *overrides_of_job, "--cfg", "job", cwd=cwd, env=env), app, args)


def _ok(res, app: str, args: list[str]):
    assert res.returncode == 0, f"{app} {shlex.join(args)}:\n{res.stderr[-3000:]}"
    return res


def make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([\w-]+):", text, re.M))


def exists(program: str, cwd: Path) -> bool:
    """A program a line names: on PATH, in this venv's bin, or a file of the repo."""
    venv_bin = Path(sys.executable).parent
    path = os.pathsep.join([str(venv_bin), os.environ.get("PATH", "")])
    return bool(shutil.which(program, path=path)) or (REPO / program).is_file()


def run_shell(block: Block, cwd: Path, reports: list[tuple[list[str], Path]]) -> Path:
    """Run one shell block in ``cwd``; returns the directory it ends in. ``initsweep-report``
    lines are collected in ``reports`` for the slow test."""
    for argv in commands(block.code):
        env, argv = split_env(argv)
        program, args = argv[0], argv[1:]
        where = f"{block.page.relative_to(REPO)}:{block.line}: {shlex.join(argv)}"
        if program == "sudo":
            program, args = args[0], args[1:]
        if program == "python" and args[:2] == ["-m", "initsweep"]:
            program, args = "initsweep-train", args[2:]
        if program in HYDRA_APPS:
            compose(program, args, cwd, env)
        elif program == "initsweep-example":
            _ok(run_app(program, *args, cwd=cwd, env=env), program, args)
        elif program == "initsweep-report":
            reports.append((args, cwd))
        elif program == "cd":
            cwd = cwd / args[0]
            assert cwd.is_dir(), f"{where}: no such directory"
        elif program == "make":
            missing = [t for t in args if not t.startswith("-") and t not in make_targets()]
            assert not missing, f"{where}: not a Makefile target: {missing}"
        elif program == "python":
            assert (REPO / args[0]).is_file(), f"{where}: no such script"
        else:
            assert exists(program, cwd), f"{where}: {program} is not installed or in the repo"
    return cwd


def run_python(block: Block) -> None:
    code = compile(block.code, f"{block.page}:{block.line}", "exec")
    exec(code, {"__name__": "__docs__"})
