"""docs/smoke.md documents exactly the checks ``make smoke`` runs, its endpoints and its test-only switches."""

from __future__ import annotations

import re

from smoke import checks, web

from testkit import ROOT

DOC = (ROOT / "docs" / "smoke.md").read_text(encoding="utf-8")


def documented_checks() -> list[str]:
    section = re.search(r"^## The checks\n(.*?)(?=^## )", DOC, re.M | re.S)
    assert section, "docs/smoke.md has no '## The checks' section"
    return re.findall(r"^\| `([a-z0-9-]+)` \|", section.group(1), re.M)


def test_the_docs_list_exactly_the_checks_in_their_order() -> None:
    assert documented_checks() == [c.name for c in checks.CHECKS]


def test_every_check_row_says_what_to_do_on_failure() -> None:
    for line in DOC.splitlines():
        if re.match(r"^\| `[a-z0-9-]+` \|", line):
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert len(cells) == 3, line
            assert all(cells), line


def test_the_express_endpoints_are_the_constant() -> None:
    row = next(line for line in DOC.splitlines() if line.startswith("| `express-networking` |"))
    for name, kind in checks.EXPRESS_TASK_ENDPOINTS.items():
        assert f"`{name}`" in row, name
        assert kind.lower() in row.lower(), kind


def test_the_test_only_switches_are_documented_as_test_only() -> None:
    section = re.search(r"^## For the test suite only\n(.*?)(?=^## )", DOC, re.M | re.S)
    assert section
    for name in (web.TEST_CA_ENV, web.TEST_RESOLVE_ENV):
        assert f"`{name}`" in section.group(1)


def documented_actions() -> set[str]:
    section = re.search(r"^## Permissions it needs\n(.*?)(?=^## )", DOC, re.M | re.S)
    assert section
    return set(re.findall(r"`([a-z0-9]+:[A-Za-z]+)`", section.group(1)))


def test_the_documented_permissions_are_reads() -> None:
    actions = documented_actions()
    assert actions
    assert all(a.split(":")[1].startswith(("Describe", "Get", "List", "Head")) for a in actions), actions
