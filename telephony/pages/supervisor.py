"""Supervisor pages (issue: excessive contact). Placeholder routes until that work lands."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from restrictions.models import Role
from telephony.auth import page_role

bp = Blueprint("supervisor", __name__, url_prefix="/supervisor")


@bp.route("/alerts")
@page_role(Role.SUPERVISOR)
def alerts() -> Any:
    return render_template("placeholder.html", title="Alerts")
