"""Supervisor's incident queue: agents' Warn and End presses (issue: agents' controls)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from restrictions.models import Role
from telephony.auth import page_role

bp = Blueprint("incidents", __name__, url_prefix="/supervisor/incidents")


@bp.route("/")
@page_role(Role.SUPERVISOR)
def queue() -> Any:
    return render_template("placeholder.html", title="Incidents")
