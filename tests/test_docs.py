"""The README and docs/: the test command CI runs, links that lead somewhere, the option table, and
the results blocks the waifu2x comparison rewrites."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks import compare_waifu2x
from core import options

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))


def _ci_test_command() -> str:
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    block = text.split("# --- begin README test command", 1)[1].split("# --- end README test command", 1)[0]
    lines = [line for line in block.splitlines()[1:] if line.strip()]
    assert len(lines) == 1, lines
    return lines[0].strip()


def test_readme_shows_the_test_command_ci_runs_and_the_install_command():
    text = README.read_text(encoding="utf-8")
    assert f"\n{_ci_test_command()}\n" in text
    assert "\npython3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/python -m server\n" in text


def test_readme_is_a_short_product_page():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 250


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return s.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", path.read_text(encoding="utf-8"), re.M)}


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.name)
def test_relative_links_lead_to_files_and_headings(path):
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        assert dest.exists(), f"{path.name}: link to a missing file {target}"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{path.name}: link to a missing heading {target}"


def test_readme_option_table_has_every_command_line_option():
    text = README.read_text(encoding="utf-8")
    table = text.split("## Options", 1)[1].split("\n## ", 1)[0]
    for opt in options.OPTIONS:
        if opt.flag:
            assert f"`{opt.flag}`" in table, opt.flag


@pytest.mark.parametrize("block", ["results", "fast", "ensemble2", "ensemble4", "ensemble8"])
def test_benchmarks_doc_has_the_blocks_compare_waifu2x_rewrites(block):
    text = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    new = compare_waifu2x.replace_between_markers(text, "new table", block)
    assert "new table" in new
