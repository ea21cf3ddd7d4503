"""Accessibility checks in Chromium: axe-core (axe-playwright-python) against the WCAG 2.0, 2.1
and 2.2 A and AA rules, and the 320 CSS pixel reflow check (WCAG 1.4.10: nothing scrolls
sideways but what is meant to, such as a wide table inside its own container)."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]

TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
NARROW = {"width": 320, "height": 640}
WIDE = {"width": 1280, "height": 720}
AXE = Axe()

# What sticks out past 320 px (outside a scrolling table's own container), for the report.
_WIDE_ELEMENTS = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > 321 && !e.closest('.table-scroll'))
    .slice(0, 4).map(e => e.tagName.toLowerCase()
                    + (e.id ? '#' + e.id : '')
                    + (e.className && typeof e.className === 'string'
                       ? '.' + e.className.trim().split(/\\s+/).join('.')
                       : ''))"""


def violations(tab: Any, label: str = "") -> list[str]:
    """axe-core's WCAG 2.2 A and AA violations on the page as it is now, a line each."""
    results = AXE.run(tab, options={"runOnly": {"type": "tag", "values": TAGS}})
    found = []
    for violation in results.response["violations"]:
        targets = "; ".join(
            " ".join(str(part) for part in node["target"]) for node in violation["nodes"]
        )
        found.append(
            f"{label + ': ' if label else ''}{violation['id']} ({violation['impact']}) at "
            f"{targets} -- {violation['help']}"
        )
    return found


class Checks:
    """What axe and the reflow check found, page state by page state, reported together by
    ``assert_none``: ``check("label")`` checks the page as it is now (``page=`` another tab)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: list[str] = []
        self.checked: list[str] = []

    def __call__(self, label: str, page: Any = None) -> None:
        tab = page if page is not None else self.page
        self.checked.append(label)
        self.problems.extend(violations(tab, label))
        before = tab.viewport_size or WIDE
        tab.set_viewport_size(NARROW)
        try:
            width = tab.evaluate("document.documentElement.scrollWidth")
            if width > NARROW["width"]:
                wide = tab.evaluate(_WIDE_ELEMENTS)
                self.problems.append(
                    f"{label}: scrolls sideways at 320 px (scrollWidth {width}), wide: {wide}"
                )
        finally:
            tab.set_viewport_size(before)

    def assert_none(self) -> None:
        assert self.problems == [], f"{len(self.problems)} problem(s):\n" + "\n".join(self.problems)
