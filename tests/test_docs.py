"""The documentation: every code block of the site and the README runs as the page says
(tests/docs_blocks.py has the rules), the API reference documents exactly the public
names, and every relative link of the README and the site resolves."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest

import flowweaver
import flowweaver.aio
from flowweaver import otel
from tests.docs_blocks import (
    DOCS,
    ROOT,
    Block,
    DocsError,
    Page,
    console_steps,
    pages,
    read_page,
    run_page,
)

PAGES = pages()


def page_params() -> list[object]:
    params = []
    for page in PAGES:
        marks = [pytest.mark.timeout(page.timeout)]
        if page.slow or page.notebook:
            marks.append(pytest.mark.slow)
        params.append(pytest.param(page, id=page.name, marks=marks))
    return params


@pytest.mark.parametrize("page", page_params())
def test_every_code_block_runs_as_the_page_says(page: Page, tmp_path: Path) -> None:
    run_page(page, tmp_path)


def test_the_site_has_its_sections_and_they_hold_code() -> None:
    names = {page.name for page in PAGES}
    for section in ("tutorial", "how-to", "explanations", "reference"):
        assert any(name.startswith(f"docs/{section}/") for name in names), section
    tutorial = [p for p in PAGES if p.name.startswith("docs/tutorial/") and "index" not in p.name]
    for page in tutorial:
        # Each tutorial page ends in a working program that a console block runs.
        assert any(b.file and b.language == "python" for b in page.blocks), page.name
        assert any(b.language == "console" for b in page.blocks), page.name


# --- the API reference ---------------------------------------------------------------

DIRECTIVE = re.compile(r"^::: (flowweaver(?:\.aio|\.otel)?)\.(\w+)\s*$", re.M)


def documented() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"flowweaver": set(), "flowweaver.aio": set()}
    for path in (DOCS / "reference").glob("*.md"):
        for module, name in DIRECTIVE.findall(path.read_text(encoding="utf-8")):
            if f"{module}.{name}" not in ("flowweaver.aio", "flowweaver.otel"):  # modules
                found.setdefault(module, set()).add(name)
    return found


def test_the_api_reference_documents_every_public_name_and_no_other() -> None:
    found = documented()
    assert found["flowweaver"] == set(flowweaver.__all__)
    assert found["flowweaver.aio"] == set(flowweaver.aio.__all__)
    assert found["flowweaver.otel"] == set(otel.__all__)


def test_the_command_reference_is_generated_from_the_command_itself() -> None:
    text = (DOCS / "reference" / "command.md").read_text(encoding="utf-8")
    assert ":module: flowweaver._cli._app" in text
    assert ":command: cli" in text


# --- links ---------------------------------------------------------------------------

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def anchors(path: Path) -> set[str]:
    """The ids MkDocs (toc) and GitHub give a page's headings, and the ids mkdocstrings
    gives each object of a ``::: flowweaver.Name`` directive and its public members
    (``flowweaver.Workflow``, ``flowweaver.Workflow.add_task``)."""
    ids = set()
    text = path.read_text(encoding="utf-8")
    for heading in re.findall(r"^#+ (.+)$", text, re.M):
        # MkDocs' slugs keep underscores (they are word characters), as GitHub's do.
        heading = re.sub(r"[`*]", "", heading).strip().lower()
        ids.add(re.sub(r"[^\w\- ]", "", heading).replace(" ", "-"))
    for module, name in DIRECTIVE.findall(text):
        ids.add(f"{module}.{name}")
        obj = getattr(importlib.import_module(module), name)
        ids.update(f"{module}.{name}.{m}" for m in dir(obj) if not m.startswith("_"))
    return ids


@pytest.mark.parametrize(
    "page",
    [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))],
    ids=lambda path: path.relative_to(ROOT).as_posix(),
)
def test_every_relative_link_resolves(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue  # an address outside: the site is built offline, so not checked
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        assert path.exists(), f"{page.name}: link to {target} (no such file)"
        if anchor and path.suffix == ".md":
            assert anchor in anchors(path), f"{page.name}: link to {target} (no such heading)"


def test_api_reference_anchors_are_the_ids_mkdocstrings_gives() -> None:
    ids = anchors(DOCS / "reference" / "workflows.md")
    assert {
        "flowweaver.Workflow",
        "flowweaver.Workflow.add_task",
        "outcomes-skips-and-failed-upstreams",
    } <= ids
    assert "flowweaver.Workflow._tasks" not in ids


# --- the rules of tests/docs_blocks.py themselves ------------------------------------


def page_of(tmp_path: Path, text: str) -> Page:
    path = tmp_path / "page.md"
    path.write_text(text, encoding="utf-8")
    page = read_page(path)
    page.name = "page.md"
    return page


def test_an_output_that_differs_fails_and_shows_both(tmp_path: Path) -> None:
    page = page_of(tmp_path, '```python\nprint("two")\n```\n\n```text title="Output"\none\n```\n')
    with pytest.raises(DocsError, match=r"(?s)the page shows:\none.*it printed:\ntwo"):
        run_page(page, tmp_path)


def test_output_allows_ellipsis_and_spacing(tmp_path: Path) -> None:
    page = page_of(
        tmp_path,
        '```python\nprint("took 0.0312 s   in all")\n```\n'
        '```text title="Output"\ntook ... s in all\n```\n',
    )
    assert run_page(page, tmp_path) == 2


def test_a_failing_command_fails_unless_the_page_shows_its_status(tmp_path: Path) -> None:
    failing = page_of(tmp_path, "```console\n$ python -c 'raise SystemExit(3)'\n```\n")
    with pytest.raises(DocsError, match="exited with 3"):
        run_page(failing, tmp_path)
    shown = page_of(
        tmp_path,
        "```console\n$ python -c 'raise SystemExit(3)'; echo \"status $?\"\nstatus 3\n```\n",
    )
    run_page(shown, tmp_path)


def test_a_file_block_is_written_and_run_by_a_console_block(tmp_path: Path) -> None:
    page = page_of(
        tmp_path,
        '```python title="hello.py"\nprint("hi from a file")\n```\n'
        "```console\n$ python hello.py\nhi from a file\n```\n",
    )
    run_page(page, tmp_path)
    assert (tmp_path / "hello.py").exists()


def test_a_bash_block_shows_its_installs_and_runs_the_rest(tmp_path: Path) -> None:
    page = page_of(
        tmp_path,
        "```bash\npip install -e \".[cli]\" && python -c \"open('ran', 'w')\"\nnox -s docs\n```\n",
    )
    run_page(page, tmp_path)
    assert (tmp_path / "ran").exists()
    with pytest.raises(DocsError, match="exited with 2"):
        run_page(page_of(tmp_path, "```bash\nflowweaver run missing.py\n```\n"), tmp_path)


def test_an_unknown_language_and_an_unknown_marker_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DocsError, match="no way to test"):
        run_page(page_of(tmp_path, "```ruby\nputs 1\n```\n"), tmp_path)
    with pytest.raises(ValueError, match="unknown docs-test marker"):
        page_of(tmp_path, "<!-- docs-test: fast -->\n")


def test_a_pycon_block_is_a_doctest(tmp_path: Path) -> None:
    run_page(page_of(tmp_path, "```pycon\n>>> 1 + 1\n2\n```\n"), tmp_path)
    with pytest.raises(DocsError, match="doctest failed"):
        run_page(page_of(tmp_path, "```pycon\n>>> 1 + 1\n3\n```\n"), tmp_path)


def test_blocks_inside_tabs_and_admonitions_are_found(tmp_path: Path) -> None:
    page = page_of(
        tmp_path,
        '=== "asyncio"\n\n    ```python\n    x = 1\n    print(x)\n    ```\n\n'
        '    ```text title="Output"\n    1\n    ```\n',
    )
    assert [b.language for b in page.blocks] == ["python", "text"]
    assert page.blocks[0].body == "x = 1\nprint(x)\n"
    run_page(page, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_notebook_page_runs_cells_files_and_console_blocks_in_page_order(
    tmp_path: Path,
) -> None:
    page = page_of(
        tmp_path,
        "<!-- docs-test: notebook -->\n"
        "```python\nimport asyncio\nx = await asyncio.sleep(0, result=2)\nprint(x)\n```\n"
        '```text title="Output"\n2\n```\n'
        '```python title="script.py"\nprint("run as a script")\n```\n'
        "```console\n$ python script.py\nrun as a script\n```\n"
        '```python\nopen("from_cell.txt", "w").write("the kernel wrote this")\nprint(x * 2)\n```\n'
        '```text title="Output"\n4\n```\n'
        "```console\n$ cat from_cell.txt\nthe kernel wrote this\n```\n",
    )
    assert page.notebook
    assert run_page(page, tmp_path) == 7


def test_console_steps_split_commands_from_output() -> None:
    steps = list(console_steps("$ a \\\n  --b\nout 1\nout 2\n$ c\n"))
    assert steps == [("a \\\n  --b", "out 1\nout 2"), ("c", "")]
    assert Block("text", {"title": "Output"}, "", 1).is_output


# --- the site's hook: figures from the results files ---------------------------------


def hooks() -> Any:
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "scripts/mkdocs_hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_results_section_is_taken_whole_with_its_subheadings_under_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = hooks()
    monkeypatch.setattr(hook, "ROOT", tmp_path)
    (tmp_path / "R.md").write_text(
        "# Results\n\n## Speed\n\nintro\n\n### wide\n\n| a |\n\n## Memory\n\n42 B\n",
        encoding="utf-8",
    )
    assert hook.section("R.md", "Speed") == "intro\n\n#### wide\n\n| a |\n"
    page = 'before\n<!-- results: R.md "Memory" -->\nafter'
    assert hook.on_page_markdown(page) == "before\n42 B\n\nafter"


def test_a_missing_results_file_or_heading_names_it_and_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = hooks()
    monkeypatch.setattr(hook, "ROOT", tmp_path)
    with pytest.raises(LookupError, match=r"RESULTS-peers\.md does not exist.*bench_peers"):
        hook.section("RESULTS-peers.md", "Peers")
    (tmp_path / "RESULTS.md").write_text("## Speed\n\n1 us\n", encoding="utf-8")
    with pytest.raises(LookupError, match=r'no heading "Memory".*fix the page or rerun'):
        hook.section("RESULTS.md", "Memory")


def test_every_results_section_the_site_names_exists() -> None:
    hook = hooks()
    for path in DOCS.rglob("*.md"):
        for file, heading in hook.RESULTS.findall(path.read_text(encoding="utf-8")):
            assert hook.section(file, heading).strip(), (path.name, file, heading)


def test_sphinx_roles_before_code_are_dropped_from_the_reference() -> None:
    html = "see :class:<code>Task</code> and a:b <code>x</code>"
    assert hooks().on_page_content(html) == "see <code>Task</code> and a:b <code>x</code>"
