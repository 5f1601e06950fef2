"""Foundation: the Parameters and Outputs tables of docs/deploy.md match template.yaml; the README.

The README links there, leads an administrator to docs/runbook.md on its first screen, and
deploys with the SAM CLI alone (``make deploy-tools``, ``make deploy ENV=...``). Other areas
add parameters and outputs over time; these tests fail when one is missing from the "Deploy for
real" tables, when a row names something the template no longer has, or when a documented
default differs from the template's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from testkit import ROOT
from testkit.template import load

DEPLOY_PAGE = ROOT / "docs" / "deploy.md"
NAME = re.compile(r"`([A-Za-z][A-Za-z0-9]*)`")


def _section(heading: str) -> str:
    """The text of the ``### <heading>`` subsection of ``## Deploy for real`` (up to the next heading)."""
    text = DEPLOY_PAGE.read_text(encoding="utf-8") + "\n## "
    deploy = re.search(r"^## Deploy for real\n(.*?)(?=^## )", text, re.M | re.S)
    assert deploy, "docs/deploy.md has no '## Deploy for real' section"
    sub = re.search(rf"^### {re.escape(heading)}\n(.*?)(?=^##)", deploy.group(1) + "\n##", re.M | re.S)
    assert sub, f"docs/deploy.md has no '### {heading}' under 'Deploy for real'"
    return sub.group(1)


def _rows(heading: str) -> list[list[str]]:
    rows = []
    for line in _section(heading).splitlines():
        if not line.startswith("|") or re.match(r"^\|\s*-+", line):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in ("Parameter", "Output"):
            continue
        rows.append(cells)
    assert rows, f"no table rows under '### {heading}'"
    return rows


def _documented(heading: str) -> dict[str, str]:
    """Name -> the row's second cell, for every name in a row's first cell."""
    out: dict[str, str] = {}
    for cells in _rows(heading):
        names = NAME.findall(cells[0])
        assert names, f"row without a `Name` in its first cell: {cells}"
        for name in names:
            out[name] = cells[1]
    return out


def test_every_template_parameter_is_in_the_deploy_page_and_nothing_else() -> None:
    template = set(load()["Parameters"])
    documented = set(_documented("Parameters"))
    assert sorted(template - documented) == [], "parameters missing from docs/deploy.md 'Deploy for real' tables"
    assert sorted(documented - template) == [], "docs/deploy.md documents parameters the template does not have"


def test_every_template_output_is_in_the_deploy_page_and_nothing_else() -> None:
    template = set(load()["Outputs"])
    documented = set(_documented("Outputs"))
    assert sorted(template - documented) == [], "outputs missing from docs/deploy.md 'Deploy for real' tables"
    assert sorted(documented - template) == [], "docs/deploy.md documents outputs the template does not have"


def _readme_defaults() -> dict[str, str | None]:
    """Parameter -> documented default ("" for empty, None for required) where a row pairs them up."""
    out: dict[str, str | None] = {}
    for cells in _rows("Parameters"):
        names = NAME.findall(cells[0])
        cell = cells[1]
        if cell == "empty":
            values: list[str | None] = [""]
        elif cell == "(required)":
            values = [None]
        else:
            values = list(re.findall(r"`([^`]*)`", cell))
        assert len(values) == len(names), f"cannot pair names with defaults in row {cells}"
        out.update(zip(names, values, strict=True))
    return out


@pytest.mark.parametrize("name", sorted(load()["Parameters"]))
def test_documented_default_is_the_template_default(name: str) -> None:
    spec = load()["Parameters"][name]
    default = spec.get("Default")
    expected = None if default is None else str(default)
    assert _readme_defaults()[name] == expected, name


# ----- The README's first screen and the deploy commands (docs/runbook.md) -----

README = ROOT / "README.md"
FIRST_SCREEN_LINES = 30


def _readme_section(heading: str) -> str:
    text = README.read_text(encoding="utf-8") + "\n## "
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## )", text, re.M | re.S)
    assert match, f"README.md has no '## {heading}'"
    return match.group(1)


def test_the_readme_first_screen_leads_an_administrator_to_the_runbook() -> None:
    text = README.read_text(encoding="utf-8")
    first_screen = "\n".join(text.splitlines()[:FIRST_SCREEN_LINES])
    assert "](docs/runbook.md)" in first_screen, "the runbook link must be on the README's first screen"
    # ... above the developers' quick start, which keeps its two commands.
    assert text.index("](docs/runbook.md)") < text.index("## Quick start")
    quick = _readme_section("Quick start")
    assert re.findall(r"^make (\w+)", quick, re.M) == ["local", "test"]


@pytest.mark.parametrize("page", [README, DEPLOY_PAGE], ids=lambda p: p.name)
def test_deploy_for_real_needs_only_the_sam_cli(page: Path) -> None:
    text = page.read_text(encoding="utf-8") + "\n## "
    section = re.search(r"^## Deploy for real\n(.*?)(?=^##)", text, re.M | re.S)
    assert section, f"{page.name} has no '## Deploy for real'"
    block = re.search(r"```bash\n(.*?)```", section.group(1), re.S)
    assert block, f"{page.name}: no commands under 'Deploy for real'"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert "make deploy-tools" in commands
    assert any(re.fullmatch(r"make deploy ENV=(dev|prod|dev-express|prod-express)", c) for c in commands), commands
    # Deploying never installs or runs the scanners or the test environment (comments may say so).
    for word in ("make install", "checkov", "cfn-guard", ".venv", "make static", "make test"):
        assert not [c for c in commands if word in c], f"{page.name}: 'Deploy for real' uses {word}"
    assert "runbook.md" in section.group(1), f"{page.name}: 'Deploy for real' should point at the runbook"
