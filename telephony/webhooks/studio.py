"""callguard's decision for a Studio flow's "Make HTTP Request" widget (or a Function): signed
like every Twilio webhook, answered as JSON. A flow sends the call's ``From`` (and ``CallSid``)
and uses ``task_attributes`` in its "Send to Flex" widget, or, when ``ends_call`` is true,
hands the call to callguard with a "TwiML Redirect" to ``twiml_url``."""

from __future__ import annotations

from flask import Response, current_app, jsonify, request

from telephony import callers
from telephony.config import current_settings
from telephony.inputs import is_sid
from telephony.webhooks import bp


@bp.post("/studio/caller")
def studio_caller() -> Response:
    number = (request.form.get("From") or request.form.get("number") or "")[:64]
    call_sid = request.form.get("CallSid", "")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    found = callers.decision(
        app, current_settings(), number, call_sid if is_sid(call_sid) else None
    )
    return jsonify(found)
