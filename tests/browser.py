"""Driving the pages in Chromium the way a person does, without racing the browser."""

from __future__ import annotations

from typing import Any


def follow(target: Any) -> None:
    """Click a link or a submit button and return once the page it leads to has loaded; then
    check the page it led to with axe-core (WCAG 2.2 A and AA), so every page state a browser
    test reaches by following a link or sending a form is checked, not only those the
    accessibility tests visit.

    Playwright's ``click`` returns as soon as the next page starts to arrive, so a check made
    straight after it can read the old page or a half-parsed new one; a test that clicks
    through to another page uses this instead.
    """
    with target.page.expect_navigation():
        target.click()
    page = target.page
    if page.url.endswith(".pdf") or "download=1" in page.url:
        return
    from tests.a11y import violations

    found = violations(page)
    assert found == [], f"axe on {page.url}:\n" + "\n".join(found)
