"""The agent console (issue: agents' controls). Placeholder route until that work lands."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from restrictions.models import Role
from telephony.auth import page_role

bp = Blueprint("agent", __name__, url_prefix="/agent")


@bp.route("/")
@page_role(Role.AGENT)
def console() -> Any:
    return render_template("placeholder.html", title="Agent console")
