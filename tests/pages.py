"""Driving the staff pages without a browser: a test client of its own, signed in through the
sign-in form as a person would, CSRF token and all."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import CSRF_FIELD


def csrf(page: str) -> str:
    """The first form's CSRF token on ``page``."""
    found = CSRF_FIELD.search(page)
    assert found is not None, "the page has no form with a CSRF token"
    return found[1]


def signed_in(app: Flask, staff: Any) -> FlaskClient:
    """A browser of its own, signed in with the sign-in form."""
    browser = app.test_client()
    answer = browser.post(
        "/sign-in",
        data={
            "csrf_token": csrf(browser.get("/sign-in").get_data(as_text=True)),
            "name": staff.user.name,
            "password": staff.password,
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return browser
