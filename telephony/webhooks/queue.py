"""A caller queued for TaskRouter (a ``taskrouter:`` route): what they hear while they wait (hold
words and the emergency offer), a key pressed meanwhile, and what happens when they leave the
queue however it happens (bridged and done, hung up, emergency repairs chosen, or the task timed
out or failed): never a dead end."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Response, current_app, request
from redis.exceptions import RedisError
from sqlalchemy import select

from restrictions.models import Call
from restrictions.speech import say
from telephony import handover, inbound, messages, twiml, waiting
from telephony.config import current_settings
from telephony.database import database
from telephony.errors import json_error
from telephony.inputs import is_sid
from telephony.redis_store import redis_client
from telephony.urls import emergency_result_url, listener_from, queue_url
from telephony.webhooks import bp

log = logging.getLogger("callguard.queue")
WAIT_PAUSE_SECONDS = 15
DONE = frozenset({"bridged", "hangup"})  # talked and finished, or the caller hung up


def _xml(xml: str) -> Response:
    return Response(xml, status=200, mimetype="text/xml")


def _call() -> tuple[str, str] | Response:
    call_sid = request.args.get("call_sid", "")
    kind = request.args.get("kind", waiting.AGENT)
    if not is_sid(call_sid) or kind not in (waiting.AGENT, waiting.SPOC):
        return json_error("call_sid (a CallSid) and kind (agent or spoc) are required", 400)
    return call_sid, kind


@bp.post("/voice/queue/wait")
def queue_wait() -> Response:
    """The Enqueue's waitUrl: hold words and the emergency offer, then a pause."""
    found = _call()
    if isinstance(found, Response):
        return found
    call_sid, kind = found
    listener, settings = listener_from(request.args), current_settings()
    return _xml(
        twiml.queue_wait(
            say("hold", listener, settings),
            say("emergency_offer", listener, settings),
            queue_url("key", call_sid, kind, listener),
            WAIT_PAUSE_SECONDS,
        )
    )


@bp.post("/voice/queue/key")
def queue_key() -> Response:
    """1 while queued: out of the queue to the emergency line (the choice is held first, so
    the queue's action knows it); any other key: back to waiting."""
    found = _call()
    if isinstance(found, Response):
        return found
    call_sid, kind = found
    if request.form.get("Digits", "") != "1":
        return _xml(
            twiml.redirect_to(queue_url("wait", call_sid, kind, listener_from(request.args)))
        )
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    waiting.hold_for_emergency(app, call_sid)
    chosen_at = datetime.now(UTC).isoformat()
    if not handover.enqueue(handover.RECORD_EMERGENCY_CHOICE, call_sid, chosen_at, call_path=True):
        inbound.record_emergency_now(app, call_sid, chosen_at)
    return _xml(twiml.leave_queue())


def _chose_emergency(call_sid: str) -> bool:
    """The caller pressed 1 while queued: Redis holds the choice; the call's row is the
    backstop when Redis cannot say."""
    try:
        held = redis_client().get(waiting.CLAIM_PREFIX + call_sid)
        return held in (b"emergency", "emergency")
    except RedisError:
        pass
    db = database(current_app._get_current_object())  # type: ignore[attr-defined]

    def read() -> bool:
        with db.sessions() as sess:
            chosen = sess.scalar(
                select(Call.emergency_selected_at).where(Call.call_sid == call_sid)
            )
            return chosen is not None

    try:
        return bool(db.breaker.call(0.5, "call-path", read))
    except Exception as exc:
        log.warning("could not tell whether call %s chose emergency repairs: %s", call_sid, exc)
        return False


@bp.post("/voice/queue/result")
def queue_result() -> Response:
    """The Enqueue's action: the caller has left the queue. Bridged and done, or hung up: the
    end. Emergency repairs chosen: the emergency line. Anything else (the task timed out, was
    canceled, the queue was full or failed): a SPOC's caller may leave a message, anyone else
    hears the team is busy, with the emergency offer."""
    found = _call()
    if isinstance(found, Response):
        return found
    call_sid, kind = found
    listener, settings = listener_from(request.args), current_settings()
    result = request.form.get("QueueResult", "")
    if result in DONE:
        return _xml(twiml.hang_up())
    if result == "leave" and _chose_emergency(call_sid):
        connecting = say("emergency_connecting", listener, settings)
        action = emergency_result_url(call_sid, listener, 1)
        return _xml(
            twiml.emergency_dial(
                settings.emergency_line, connecting, settings.emergency_ring_seconds, action
            )
        )
    log.info("call %s left TaskRouter's queue (%s); moved on", call_sid, result[:20] or "?")
    if kind == waiting.SPOC:
        return _xml(messages.voicemail(listener, settings, call_sid))
    return _xml(messages.team_busy(listener, settings, call_sid))
