"""Driving the pages in Chromium the way a person does, without racing the browser."""

from __future__ import annotations

from typing import Any


def follow(target: Any) -> None:
    """Click a link or a submit button and return once the page it leads to has loaded.

    Playwright's ``click`` returns as soon as the next page starts to arrive, so a check made
    straight after it can read the old page or a half-parsed new one; a test that clicks
    through to another page uses this instead.
    """
    with target.page.expect_navigation():
        target.click()
