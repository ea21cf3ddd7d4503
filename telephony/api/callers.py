"""The routing decision for a caller, for the landlord's other systems (an integration role)."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify

from restrictions.models import Role
from telephony import callers
from telephony.api import bp, error
from telephony.auth import api_role
from telephony.config import current_settings


@bp.get("/callers/<path:number>")
@api_role(Role.INTEGRATION)
def caller(number: str) -> Any:
    """What callguard would do with a call from ``number`` (E.164, e.g. ``+447400100001``)."""
    if len(number) > 32 or not number.startswith("+") or not number[1:].isdigit():
        return error("give the caller's number in E.164 form, for example +447400100001", 422)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return jsonify(callers.decision(app, current_settings(), number))
