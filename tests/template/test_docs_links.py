"""The README stays short and every page under docs/ is reachable and links correctly.

The README is the newcomer's first screen: intro, quick start, architecture, deploy, links.
Detail lives in docs/, one page per area; a page nobody links to, or a relative link to a
file that moved, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from testkit import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def test_readme_is_short_and_has_the_two_quick_start_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text) < 12_000, "README.md grew past two screens: move detail into docs/"
    quick = re.search(r"^## Quick start\n(.*?)(?=^## )", text, re.M | re.S)
    assert quick, "README.md has no Quick start"
    assert re.search(r"^make local\b", quick.group(1), re.M)
    assert re.search(r"^make test\b", quick.group(1), re.M)
    for heading in ("## Architecture", "## Deploy for real", "## Documentation"):
        assert re.search(rf"^{heading}$", text, re.M), heading


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = set(LINK.findall(README.read_text(encoding="utf-8")))
    missing = [p.name for p in _pages() if f"docs/{p.name}" not in linked]
    assert missing == []


@pytest.mark.parametrize("page", [README, *_pages()], ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
