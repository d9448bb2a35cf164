"""``initsweep-example NAME DIR``: copy an example project shipped in the package to ``DIR``.

The examples live in ``initsweep/examples/<name>/`` (package data, so an installed initsweep
has them): a project of a researcher's own, with its model, its data and its config dir, that
runs with ``initsweep-train --config-dir conf`` from its directory.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from importlib.resources import as_file, files
from pathlib import Path

# what to run once copied, and how long its default study takes (printed after the copy)
NEXT = {
    "arrival_time": (
        "initsweep-train --config-dir conf -m experiment=arrival_bias   "
        "# 12 jobs x 3 seeds: about 3 min on a 2-core CPU"
    ),
}


def examples() -> list[str]:
    """The example projects' names."""
    root = files("initsweep") / "examples"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))


def _ignore(_dir: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__" or n.endswith(".pyc")]


def copy_example(name: str, dest: Path) -> Path:
    """Copy example ``name`` to ``dest`` (created; it must not exist or be empty)."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FileExistsError(f"{dest} exists and is not an empty directory; choose a new DIR")
    with as_file(files("initsweep") / "examples" / name) as src:
        shutil.copytree(src, dest, ignore=_ignore, dirs_exist_ok=True)
    return dest


def main(argv: list[str] | None = None) -> None:
    """The console script: ``initsweep-example`` lists the examples, ``NAME DIR`` copies one."""
    names = examples()
    parser = argparse.ArgumentParser(
        prog="initsweep-example",
        description="Copy an example project (its model, data and config dir) to DIR.",
        epilog=f"examples: {', '.join(names)}",
    )
    parser.add_argument("name", nargs="?", help=f"one of: {', '.join(names)}")
    parser.add_argument("dir", nargs="?", type=Path, help="where to copy it (a new directory)")
    args = parser.parse_args(argv)
    if args.name is None:
        print("\n".join(names))
        return
    if args.name not in names:
        parser.exit(
            2,
            f"initsweep-example: error: name={args.name!r} is not an example; "
            f"choose one of: {', '.join(names)}\n",
        )
    dest = args.dir or Path(args.name)
    try:
        copy_example(args.name, dest)
    except FileExistsError as e:
        parser.exit(2, f"initsweep-example: error: {e}\n")
    print(f"copied the {args.name} example to {dest}; then:")
    print(f"  cd {dest}")
    print(f"  {NEXT.get(args.name, 'initsweep-train --config-dir conf')}")


if __name__ == "__main__":
    main(sys.argv[1:])
