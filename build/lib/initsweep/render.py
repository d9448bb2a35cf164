"""One table renderer for every table initsweep prints or writes: text, Markdown and HTML.

The end-of-job summary, the probe's per-layer table, the best trials of a search and the
report's tables all go through :func:`render_table`, so they read alike and a fix to one is a
fix to all. Cells are strings; formatting numbers is the caller's business.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

STYLES = ("text", "markdown", "html")


def render_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    style: str = "text",
    *,
    align: str = "",
    title: str = "",
    row_classes: Sequence[str] | None = None,
    table_class: str = "",
    pad: bool = True,
) -> str:
    """``rows`` under ``header`` as ``style``: ``text`` (fixed width), ``markdown`` or ``html``.

    ``align`` has one letter per column, ``l`` or ``r`` (missing letters are ``l``): text
    tables pad to the right or left, Markdown ones mark the column ``---:``. ``title`` is a line
    above a text table. ``pad=False`` leaves a wide Markdown table unpadded (it is read rendered,
    not in a terminal). ``row_classes`` and ``table_class`` are HTML classes (the report's
    stylesheet colours a row by its job status).
    """
    if style not in STYLES:
        raise ValueError(f"style={style!r}: use one of {', '.join(STYLES)}")
    rows = [list(map(str, r)) for r in rows]
    header = list(map(str, header))
    right = [i < len(align) and align[i] == "r" for i in range(len(header))]
    if style == "html":
        return _html(header, rows, row_classes, table_class)
    if style == "markdown":
        cells = [[c.replace("|", "\\|") for c in r] for r in [header, *rows]]
        widths = _widths(cells) if pad else [1] * len(header)
        rule = ["-" * (w + 1) + (":" if r else "-") for w, r in zip(widths, right)]
        lines = ["| " + " | ".join(_pad(r, widths, right)) + " |" for r in cells]
        return "\n".join([lines[0], "|" + "|".join(rule) + "|", *lines[1:]])
    widths = _widths([header, *rows])
    lines = [title] if title else []
    lines += ["  ".join(_pad(header, widths, right)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(_pad(r, widths, right)).rstrip() for r in rows]
    return "\n".join(lines)


def _widths(rows: list[list[str]]) -> list[int]:
    return [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]


def _pad(cells: list[str], widths: list[int], right: list[bool]) -> list[str]:
    return [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)]


def _html(header, rows, row_classes, table_class) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, r in enumerate(rows):
        cls = f' class="{html.escape(row_classes[i])}"' if row_classes else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
    cls = f' class="{html.escape(table_class)}"' if table_class else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
