"""The documentation: README.md and docs/ link only to files of the repository that exist (and to
headings those files have), docs/cli.md is what docs/generate_cli.py renders from the CLI, and the
README stays a short entry point."""

import importlib.util
import re
from pathlib import Path

from neurocypher.ingest.methods import table

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
HTML_TARGET = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)=\"([^\"]+)\"", re.IGNORECASE)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def pages(root: Path) -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def prose(markdown: str) -> str:
    """The text outside fenced code blocks and code spans, where links are links."""
    return CODE_SPAN.sub("", FENCE.sub("", markdown))


def targets(markdown: str) -> list[str]:
    """Every link and image target of a Markdown text: inline, reference definitions and HTML."""
    text = prose(markdown)
    return [m.group(1) for pattern in (LINK, DEFINITION, HTML_TARGET) for m in pattern.finditer(text)]


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings: lower case, punctuation dropped, spaces as hyphens,
    a repeated one numbered -1, -2, ..."""
    seen: dict[str, int] = {}
    for heading in HEADING.findall(FENCE.sub("", markdown)):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        seen[slug] = seen.get(slug, -1) + 1
    return {f"{slug}-{n}" if n else slug for slug, count in seen.items() for n in range(count + 1)}


def broken_links(page: Path, root: Path) -> list[str]:
    """What is wrong with each relative link of `page`: it leaves `root`, names a missing file, or
    names a heading its Markdown file does not have. Links with a scheme (https:, mailto:) are not
    followed."""
    problems = []
    for target in targets(page.read_text()):
        if SCHEME.match(target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if path.startswith("/") or not file.is_relative_to(root):
            problems.append(f"{target}: leaves the repository")
        elif not file.exists():
            problems.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
            problems.append(f"{target}: no such heading in {file.relative_to(root)}")
    return problems


def test_every_link_stays_in_the_repository_and_arrives():
    found = {str(page.relative_to(ROOT)): broken_links(page, ROOT) for page in pages(ROOT)}
    assert {page: problems for page, problems in found.items() if problems} == {}


def test_the_link_check_finds_each_kind_of_broken_link(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "there.md").write_text("# A page\n\n## Its part: one\n")
    (tmp_path / "docs" / "picture.png").write_bytes(b"")
    page = tmp_path / "README.md"
    page.write_text(
        "[fine](docs/there.md#its-part-one) ![fine](docs/picture.png) [fine](https://example.org/x)\n"
        "[up](../outside.md) [absolute](/etc/passwd) [missing](docs/gone.md) [no heading](docs/there.md#nope)\n"
        "```\n[in code](../ignored.md)\n```\n`[in a span](../ignored.md)`\n"
        '[ref]: ../../elsewhere.md\n<img src="docs/absent.png">\n'
    )
    assert broken_links(page, tmp_path) == [
        "../outside.md: leaves the repository",
        "/etc/passwd: leaves the repository",
        "docs/gone.md: no such file",
        "docs/there.md#nope: no such heading in docs/there.md",
        "../../elsewhere.md: leaves the repository",
        "docs/absent.png: no such file",
    ]


def test_cli_page_is_what_the_generator_renders():
    spec = importlib.util.spec_from_file_location("generate_cli", ROOT / "docs" / "generate_cli.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    rendered = generator.render()
    assert rendered.splitlines()[0].startswith("Generated from the command line by `docs/generate_cli.py`")
    assert "## neurocypher db start" in rendered and "`--memory-budget <float>`" in rendered
    assert (ROOT / "docs" / "cli.md").read_text() == rendered, "run: .venv/bin/python docs/generate_cli.py"


def test_readme_is_a_short_entry_point():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert "make demo" in readme and "make test" in readme


def test_methods_page_holds_the_registry_table():
    assert table() in (ROOT / "docs" / "methods.md").read_text()
