"""``index.html``: every section on one page that opens from disk (no scripts, no network)."""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path

from initsweep.report.jobs import Study
from initsweep.report.section import Section

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; font-size: .85em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: left; white-space: nowrap; }
th { background: #f3f3f3; white-space: normal; vertical-align: bottom; }
tr.incomplete td, tr.empty td { color: #8a6d00; } tr.corrupt td, tr.failed td { color: #b00; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #eee; }
figcaption, .note, .meta { color: #555; font-size: .9em; }
nav a { margin-right: 1em; }
.problems { color: #8a6d00; }
.alert { background: #fff4d6; border-left: 4px solid #e0a800; padding: .5em .8em; }
table.verdicts { width: 100%; } table.verdicts td { white-space: normal; }
h3 { font-size: 1em; margin: 1.4em 0 .4em; } details { margin: 1em 0; }
.wide { overflow-x: auto; }
"""


def _anchor(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower())


def page(study: Study, sections: list[Section], out: Path) -> Path:
    done, total = len(study.finished), len(study.jobs)
    nav = "".join(f'<a href="#{_anchor(s.title)}">{html.escape(s.title)}</a>' for s in sections)
    alerts = "".join(f'<p class="alert">{html.escape(s.alert)}</p>' for s in sections if s.alert)
    body = "".join(
        f'<section id="{_anchor(s.title)}"><h2>{html.escape(s.title)}</h2>{s.html}</section>'
        for s in sections
    )
    meta = (
        f"{total} job(s), {done} finished · varying: {', '.join(study.varying) or 'nothing'} · "
        + (f"tags: {', '.join(study.tags)} · " if study.tags else "")
        + f"generated {datetime.now():%Y-%m-%d %H:%M} by initsweep-report"
    )
    doc = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>initsweep report: {html.escape(study.root.name)}</title><style>{CSS}</style>"
        f"</head><body><h1>initsweep report: {html.escape(str(study.root))}</h1>"
        f'<p class="meta">{html.escape(meta)}</p>{alerts}<nav>{nav}</nav>{body}</body></html>\n'
    )
    path = out / "index.html"
    path.write_text(doc)
    return path
