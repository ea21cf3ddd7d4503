"""The person rung for a waiting caller: the whisper they hear on answering, their key press,
and what the caller hears when their conference ends.

A voicemail greeting or a person who does not press 1 never joins the caller: the leg hangs up,
its status callback says so, and the caller is moved on (or the hold heartbeat does it). Each
answer reads the call's row under the call path's deadline and has a sensible answer without it.
"""

from __future__ import annotations

import logging

from flask import Response, current_app, request
from redis.exceptions import RedisError
from sqlalchemy import select

import prompts
from restrictions import kinds
from restrictions.models import Call, Customer
from telephony import messages, twiml, waiting
from telephony.config import current_settings
from telephony.database import database
from telephony.errors import json_error
from telephony.inputs import is_sid
from telephony.redis_store import redis_client
from telephony.urls import accept_url, conference_status_url, listener_from
from telephony.webhooks import bp

log = logging.getLogger("callguard.whisper")


def _xml(xml: str) -> Response:
    return Response(xml, status=200, mimetype="text/xml")


def _caller(call_sid: str) -> tuple[Call | None, Customer | None]:
    """The waiting caller's row and customer (None, None when the database cannot say)."""
    db = database(current_app._get_current_object())  # type: ignore[attr-defined]

    def read() -> tuple[Call | None, Customer | None]:
        with db.sessions() as sess:
            call = sess.scalar(select(Call).where(Call.call_sid == call_sid))
            customer = sess.get(Customer, call.customer_id) if call and call.customer_id else None
            sess.expunge_all()
            return call, customer

    try:
        found: tuple[Call | None, Customer | None] = db.breaker.call(0.5, "call-path", read)
        return found
    except Exception as exc:
        log.warning("could not read call %s for the whisper: %s", call_sid, exc)
        return None, None


def _still_waiting(call_sid: str, call: Call | None) -> bool:
    """Nobody has moved the caller on, and they have not gone (the row, and the claim a move
    takes in Redis, whichever can be read)."""
    if call is not None and (
        call.ended_at is not None
        or call.moved_on_at is not None
        or call.emergency_selected_at is not None
    ):
        return False
    try:
        return not redis_client().exists(waiting.CLAIM_PREFIX + call_sid)
    except RedisError:
        return True


def describe(call: Call | None, customer: Customer | None, kind: str) -> prompts.Speech:
    """Who is calling and what the agent should know, in a sentence or two."""
    if customer is not None:
        who = f"{customer.name}, customer {customer.reference}"
    elif call is not None and not call.from_e164:
        who = prompts.staff_speech("withheld").text
    elif call is not None:
        who = f"{prompts.staff_speech('unknown_caller').text} on {call.from_e164}"
    else:
        who = prompts.staff_speech("unknown_caller").text
    notes = prompts.staff_speech("their_contact").text if kind == waiting.SPOC else ""
    for flag in (call.flags or {}).get("flags", []) if call is not None else []:
        notes += kinds.describe_flag(str(flag)).rstrip(".") + ". "
    return prompts.staff_speech("whisper", who=who, notes=notes)


@bp.post("/voice/whisper")
def whisper() -> Response:
    """The person rung answered: who is calling, and press 1 to take the call."""
    call_sid, kind = request.args.get("call_sid", ""), request.args.get("kind", waiting.AGENT)
    if not is_sid(call_sid):
        return json_error("call_sid must be a Twilio CallSid", 400)
    call, customer = _caller(call_sid)
    if not _still_waiting(call_sid, call):
        return _xml(twiml.hang_up(prompts.staff_speech("whisper_gone")))
    return _xml(
        twiml.whisper(
            describe(call, customer, kind),
            prompts.staff_speech("whisper_again"),
            prompts.staff_speech("whisper_no_key"),
            accept_url(call_sid, kind),
        )
    )


@bp.post("/voice/whisper/accept")
def accept() -> Response:
    """1 puts the person through to the caller, if the caller is still waiting; anything else
    (or nothing) hangs up, which counts as no answer."""
    call_sid = request.args.get("call_sid", "")
    if not is_sid(call_sid):
        return json_error("call_sid must be a Twilio CallSid", 400)
    if request.form.get("Digits", "") != "1":
        return _xml(twiml.hang_up(prompts.staff_speech("whisper_no_key")))
    call, _ = _caller(call_sid)
    if not _still_waiting(call_sid, call):
        return _xml(twiml.hang_up(prompts.staff_speech("whisper_gone")))
    return _xml(twiml.join_caller(call_sid, conference_status_url(), beep=current_settings().beep))


@bp.post("/voice/after-conference")
def after_conference() -> Response:
    """The caller's conference ended for them (the person they spoke to hung up, or it ended
    before anyone was with them): goodbye after a conversation, otherwise moved on as the hold
    heartbeat would (voicemail for a SPOC's caller, the team-busy message for anyone else)."""
    call_sid = request.args.get("call_sid", "")
    kind = request.args.get("kind", waiting.AGENT)
    if not is_sid(call_sid):
        return json_error("call_sid must be a Twilio CallSid", 400)
    listener, settings = listener_from(request.args), current_settings()
    call, _ = _caller(call_sid)
    if call is None or call.answered_at is not None:
        return _xml(messages.goodbye(listener, settings))
    if kind == waiting.SPOC:
        return _xml(messages.voicemail(listener, settings, call_sid))
    return _xml(messages.team_busy(listener, settings, call_sid))
