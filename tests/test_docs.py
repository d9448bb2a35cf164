"""The docs run: the site builds strictly, and every code block of README.md and docs/ is
exercised (how: ``tests/docs_blocks.py``), so a renamed key fails here instead of on a page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO, run_app
from tests.docs_blocks import blocks, commands, pages, run_python, run_shell, split_env

PAGES = pages()


def test_the_site_builds_strictly(tmp_path):
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    config = load_config(str(REPO / "mkdocs.yml"), site_dir=str(tmp_path / "site"), strict=True)
    build(config)  # raises on any warning (a broken link, a missing include or image)
    index = (tmp_path / "site" / "index.html").read_text()
    assert "Getting started" in index
    # the generated reference holds every scheme, from the registry
    from initsweep.init import list_schemes

    schemes = (tmp_path / "site" / "reference" / "schemes" / "index.html").read_text()
    assert all(f"<code>{name}</code>" in schemes for name in list_schemes())


def test_every_page_is_in_the_nav():
    nav = (REPO / "mkdocs.yml").read_text()
    for page in PAGES[1:]:
        assert str(page.relative_to(REPO / "docs")) in nav, page


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_code_blocks_run(page, tmp_path):
    cwd, reports = tmp_path, []
    for block in blocks(page):
        if block.skip:
            continue
        if block.lang == "python":
            run_python(block)
        else:
            cwd = run_shell(block, cwd, reports)


def test_skipped_blocks_are_few_and_say_why():
    skipped = [b for p in PAGES for b in blocks(p) if b.skip]
    assert len(skipped) <= 6, [f"{b.page.name}:{b.line}" for b in skipped]
    assert all(len(b.skip.split()) >= 2 for b in skipped)  # a reason, not a bare marker


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A small real sweep (2 jobs x 3 seeds, every tracker), as a reader's would be."""
    root = tmp_path_factory.mktemp("docs-sweep")
    res = run_app(
        "initsweep-train",
        "-m",
        "bias=zeros,prior",
        "seeds=[0,1,2]",
        "trainer.epochs=2",
        "trainer.progress=false",
        "tracker=[wandb,tensorboard]",
        f"hydra.sweep.dir={root}",
        env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"},
    )
    assert res.returncode == 0, res.stderr
    return root


def _report_lines() -> list[tuple[str, list[str]]]:
    """Every ``initsweep-report`` line of the docs, with where it is."""
    found = []
    for page in PAGES:
        for block in blocks(page):
            if block.lang == "bash" and not block.skip:
                for argv in commands(block.code):
                    _env, argv = split_env(argv)
                    if argv[0] == "initsweep-report":
                        found.append((f"{page.name}:{block.line}", argv[1:]))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("where, args", _report_lines(), ids=lambda v: str(v)[:40])
def test_report_lines_run_on_a_real_sweep(where, args, sweep, tmp_path):
    # a placeholder (outputs/multirun/<date>/<time>) stands for the sweep
    args = [str(sweep) if "<" in a or a.startswith("outputs/") else a for a in args]
    res = run_app("initsweep-report", *args, "--out", str(tmp_path / "report"))
    assert res.returncode == 0, f"{where}: {args}\n{res.stderr[-2000:]}"
    assert (tmp_path / "report" / "index.html").is_file()


@pytest.mark.slow
def test_the_file_contract_lists_what_a_job_writes(sweep):
    table = (REPO / "docs" / "reference" / "files.md").read_text()
    listed = {m.rstrip("/") for m in re.findall(r"^\| `([^`]+)` \|", table, re.M)}
    written = {p.name for p in (sweep / "0").iterdir()}
    assert written <= listed, f"written but not in the docs: {written - listed}"
    # status.json exists only while a job has not finished
    assert listed - written == {"status.json"}, listed - written


def test_the_readme_stays_a_front_door():
    # about 150 lines: what initsweep answers, install, a tour, links; the rest lives in docs/
    assert len((REPO / "README.md").read_text().splitlines()) <= 160


def test_the_readmes_scheme_table_names_registered_schemes_with_their_papers():
    from initsweep.init import list_schemes
    from initsweep.init.registry import get_scheme

    readme = (REPO / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| .+ \| (\w+) [^|]*(\d{4}) \|$", readme, re.M)
    assert len(rows) == 8
    for name, author, year in rows:
        assert name in list_schemes()
        doc = get_scheme(name).__doc__ or ""
        assert author in doc and year in doc, (name, author, year)


def _within(shown, real) -> bool:
    """Every key the docs show is in the real file with the same value (the docs may omit)."""
    if isinstance(shown, dict):
        return isinstance(real, dict) and all(_within(v, real.get(k)) for k, v in shown.items())
    return shown == real


def test_yaml_blocks_quote_the_example_project_as_it_is():
    # a yaml block headed "# conf/<file>.yaml" shows keys of the example project's own file
    from omegaconf import OmegaConf

    project = REPO / "initsweep" / "examples" / "arrival_time"
    quoted = 0
    for page in PAGES:
        for m in re.finditer(
            r"```yaml\n# (conf/\S+\.yaml)[^\n]*\n(.*?)```", page.read_text(), re.S
        ):
            shown = OmegaConf.to_container(OmegaConf.create(m.group(2)))
            real = OmegaConf.to_container(OmegaConf.load(project / m.group(1)))
            assert _within(shown, real), f"{page.name}: {m.group(1)} differs from the example's"
            quoted += 1
    assert quoted >= 2
