"""junit.xml that a CI dashboard reads well: classname = the case's group, name = ID + title.

pytest's junitxml names every case `test_catalogue` / `test_case[ID]` from its node ID. The
plugin gives each case item its group, ID and title as user properties (which travel with the
test reports, also from pytest-xdist workers to the controller that writes the file), and once
junitxml has written the file, `relabel` renames each testcase from them and drops them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from conformance.cases.framework import Case

PREFIX = "rhc."


def junit_properties(case: Case) -> list[tuple[str, str]]:
    """The user properties of a case's test item that `relabel` turns into its names."""
    return [(f"{PREFIX}group", case.group), (f"{PREFIX}id", case.id),
            (f"{PREFIX}title", case.title_en)]


def relabel(path: Path) -> int:
    """Rename each case's testcase in junit.xml (classname group, name "ID title"); the number
    renamed. A file that is not there or not XML is left as it is."""
    try:
        tree = etree.parse(str(path))
    except (OSError, etree.XMLSyntaxError):
        return 0
    renamed = 0
    for testcase in tree.iter("testcase"):
        properties = testcase.find("properties")
        if properties is None:
            continue
        ours = [p for p in properties if str(p.get("name", "")).startswith(PREFIX)]
        values = {p.get("name", "").removeprefix(PREFIX): p.get("value", "") for p in ours}
        if not values.get("id"):
            continue
        testcase.set("classname", values.get("group", ""))
        testcase.set("name", f"{values['id']} {values.get('title', '')}".strip())
        for p in ours:
            properties.remove(p)
        if not len(properties):
            testcase.remove(properties)
        renamed += 1
    if renamed:
        tree.write(str(path), xml_declaration=True, encoding="utf-8")
    return renamed


class JunitNames:
    """Relabels junit.xml after pytest's junitxml has written it (its sessionfinish runs
    first: this one is trylast)."""

    def __init__(self, path: str):
        self.path = Path(path)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        relabel(self.path)


__all__ = ["JunitNames", "junit_properties", "relabel"]
