"""Agents' controls on live calls, shared by the JSON API and the agent console: check and
record the press, then have Twilio carry it out (through the gateway), recording the outcome."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

import prompts
from restrictions import adjustments, agent_actions, kinds
from restrictions.errors import Forbidden, NotFound
from restrictions.lifecycle import Actor, audit
from restrictions.models import AgentAction, Call, Customer, Restriction, User
from restrictions.speech import Listener, danger, say
from restrictions.validation import required_text
from telephony import metrics, twilio_gateway, twiml
from telephony.config import current_settings
from telephony.urls import announce_url

MAX_WRAP_UP_NOTE = 4000
# What a press on a demonstration call records: no call was placed, so Twilio is not asked.
SIMULATED = "simulated (demo): nothing was sent to Twilio"


def speech_for(call: Call, key: str) -> prompts.Speech:
    """The caller's language and speech rate apply to what they hear."""
    return say(key, Listener.of(call.customer), current_settings())


def warn(sess: Session, user: User, call_sid: str) -> AgentAction:
    """Play the scripted warning to both parties (a conference announcement); the call goes on."""
    action = agent_actions.record_press(sess, user, call_sid, agent_actions.WARN)
    sess.commit()
    url = announce_url(action.id, Listener.of(action.call.customer))
    conference_sid = action.call.conference_sid
    assert conference_sid is not None
    try:
        agent_actions.carry_out(
            sess, user, action, lambda: twilio_gateway.announce_to_conference(conference_sid, url)
        )
    except Exception:
        metrics.agent_action(agent_actions.WARN, "failed")
        raise
    metrics.agent_action(agent_actions.WARN, "sent")  # played or not: the console is told
    sess.refresh(action)  # Twilio may have said it played already
    return action


CALLER_GONE = "the caller had already left; their conference was closed, freeing the agent"


def end(sess: Session, user: User, call_sid: str, reason: Any) -> AgentAction:
    """Play the closing statement to the caller alone, disconnect them, then free the agent. A
    caller who has already gone (Twilio says the call is over, 21220) cannot hear it: the
    conference is closed all the same, so nobody is left in it."""
    action = agent_actions.record_press(sess, user, call_sid, agent_actions.END, reason)
    sess.commit()
    call = action.call
    listener = Listener.of(call.customer)
    closing = twiml.closing_then_hangup(
        speech_for(call, "closing"), danger(listener, current_settings())
    )
    conference_sid = call.conference_sid
    assert conference_sid is not None
    caller_gone = call.ended_at is not None

    def do() -> None:
        nonlocal caller_gone
        if not caller_gone:
            try:
                twilio_gateway.replace_call_twiml(
                    call.call_sid, closing, "play the closing statement"
                )
            except twilio_gateway.GatewayError as exc:
                if exc.code != twilio_gateway.CALL_NOT_IN_PROGRESS:
                    raise
                caller_gone = True
        try:
            twilio_gateway.end_conference(conference_sid)
        except twilio_gateway.GatewayError as exc:
            if exc.code != twilio_gateway.NOT_FOUND:
                raise  # 20404: the conference had ended already (the caller's leaving did it)

    try:
        agent_actions.carry_out(sess, user, action, do)
    except Exception:
        metrics.agent_action(agent_actions.END, "failed")
        raise
    metrics.agent_action(agent_actions.END, "caller_gone" if caller_gone else "ok")
    if caller_gone:
        action.detail = CALLER_GONE
        sess.commit()
    return action


def press(sess: Session, user: User, call_sid: str, kind: str, reason: Any = None) -> AgentAction:
    """Warn or End, as the agent pressed it (the API and the console both come here)."""
    # the flags alone, not the row: a Call loaded here would be the one the locked read below
    # returns, with what it said before the lock (two Ends at once both ended the call)
    flags = sess.scalar(select(Call.flags).where(Call.call_sid == call_sid))
    if isinstance(flags, dict) and flags.get("simulated"):
        return _simulated_press(sess, user, call_sid, kind, reason)
    if kind == agent_actions.WARN:
        return warn(sess, user, call_sid)
    return end(sess, user, call_sid, reason)


def card(
    call: Call, customer: Customer | None, warned: bool, warning: str | None = None
) -> dict[str, Any]:
    """What an agent needs to see about a live call: ``state`` is ``connected`` (Warn and End
    work) or ``waiting`` (the caller is being put through); ``warning`` is the latest Warn's
    outcome (``pending`` while Twilio has not said it played, ``ok``, ``failed``)."""
    flags = list((call.flags or {}).get("flags", []))
    sess = object_session(call)
    restrictions = []
    spoc = None
    if customer is not None:
        for r in customer.restrictions:
            if r.ended_at is None:
                kind = kinds.find(r.kind)
                person = kinds.person_of(r.kind, r.details)
                spoc_name = staff_name(sess, person) if person else None
                spoc = spoc or spoc_name
                restrictions.append(
                    {
                        "kind": r.kind,
                        "label": kind.label if kind else r.kind,
                        "since": r.decided_at.date().isoformat(),
                        **dict(r.details or {}),
                        # in words for the console (the fields above are the API's shape)
                        "in_force": r.state == "active",
                        "terms": restriction_terms(sess, r),
                        "spoc_name": spoc_name,
                    }
                )
    return {
        "call_sid": call.call_sid,
        "from": call.from_e164 or call.from_number or "withheld",
        "caller_name": call.caller_name,
        "customer": {
            "reference": customer.reference,
            "name": customer.name,
            "language": customer.language,
            "language_name": adjustments.language_name(customer.language),
            # never the sensitive note: the console is for agents
            "adjustments": adjustments.of(customer).public(),
            "adjustment_texts": adjustments.of(customer).words(customer.language),
        }
        if customer
        else None,
        "identified": call.identified,
        "flags": flags,
        "flag_texts": [kinds.describe_flag(f) for f in flags],
        "restrictions": restrictions,
        "route": call.route,
        "agent": call.agent_label,
        "state": "connected" if call.answered_at is not None else "waiting",
        "since": call.answered_at.isoformat() if call.answered_at else None,
        "started": call.started_at.isoformat(),
        "warned": warned,
        "warning": warning,
        "spoc_name": spoc,
        "wrap_up_note": call.wrap_up_note,
        "simulated": is_simulated(call),
    }


# --- in words for agents --------------------------------------------------------------------------


def staff_name(sess: Session | None, contact: str) -> str:
    """A named contact as people know them: a member of staff by the name letters give them
    (else their user name), a phone number as it is."""
    if not contact.startswith("client:"):
        return contact
    login = contact.removeprefix("client:")
    user = sess.scalar(select(User).where(User.name == login)) if sess is not None else None
    if user is None:
        return login
    return user.display_name or user.name


def restriction_terms(sess: Session | None, r: Restriction) -> list[str]:
    """A restriction's own terms in words ("Permitted days and times: on Tuesday …"), each field
    its kind declares that is set."""
    kind = kinds.find(r.kind)
    details = r.details or {}
    terms = []
    for f in kind.fields if kind else ():
        value = details.get(f.name)
        if value in (None, "", []):
            continue
        if f.type is kinds.FieldType.WINDOWS:
            text = prompts.describe_windows(value, prompts.DEFAULT)
        elif f.type is kinds.FieldType.CONTACT:
            text = staff_name(sess, str(value))
        else:
            text = str(value)
        terms.append(f"{f.label}: {text}")
    return terms


# --- the wrap-up note ----------------------------------------------------------------------------


def save_wrap_up_note(sess: Session, user: User, call_sid: str, note: Any) -> Call:
    """The agent's wrap-up note on a call they were on (a supervisor's on any), during the call
    or after it; audited with what it said before. The caller commits."""
    call = sess.scalar(select(Call).where(Call.call_sid == call_sid).with_for_update())
    if call is None:
        raise NotFound(f"no call {call_sid}")
    if not agent_actions.may_press(user, call):
        raise Forbidden(f"call {call_sid} is another member of staff's call")
    text = required_text(note, "note", max_length=MAX_WRAP_UP_NOTE)
    before = call.wrap_up_note
    call.wrap_up_note = text
    audit(
        sess,
        Actor.of(user),
        "call.wrap_up_note",
        "call",
        call.id,
        customer_id=call.customer_id,
        before={"call_sid": call.call_sid, "wrap_up_note": before},
        after={"call_sid": call.call_sid, "wrap_up_note": text},
    )
    return call


# --- demonstration calls (the zero-setup demo only) -----------------------------------------------


def is_simulated(call: Call) -> bool:
    return bool((call.flags or {}).get("simulated"))


def _flags_of(customer: Customer | None, tz: ZoneInfo) -> list[str]:
    """The flag codes routing would give the caller's restrictions in force."""
    if customer is None:
        return ["unidentified"]
    flags: list[str] = []
    for r in customer.restrictions:
        kind = kinds.find(r.kind)
        if kind is None or r.state != "active":
            continue
        if kind.flag_detail == "since":
            flags.append(f"{kind.name}:{r.decided_at.astimezone(tz).date().isoformat()}")
        elif kind.flag_detail:
            flags.append(f"{kind.name}:{(r.details or {}).get(kind.flag_detail, '')}")
        else:
            flags.append(kind.name)
    return flags


def _demo_caller(sess: Session) -> Customer | None:
    """A customer whose call would reach an agent: none of their restrictions in force ends it
    (a flag on the card is what the demonstration is for, so one with a restriction first)."""
    reachable = []
    for customer in sess.scalars(select(Customer).order_by(Customer.id)):
        active = [kinds.find(r.kind) for r in customer.restrictions if r.state == "active"]
        if any(k is not None and k.effect is kinds.Effect.ENDS_CALL for k in active):
            continue
        if any(k is not None and k.effect is kinds.Effect.PERSON for k in active):
            continue  # put through to their named contact, not the contact centre
        reachable.append((not active, customer.id, customer))
    return min(reachable, key=lambda t: t[:2])[2] if reachable else None


def simulate_call(sess: Session, user: User) -> Call:
    """A demonstration caller waiting in their conference (no call is placed: nothing goes to
    Twilio); ``simulate_join`` then plays the agent being put through. Audited as simulated."""
    customer = _demo_caller(sess)
    number = customer.numbers[0].e164 if customer is not None and customer.numbers else None
    sid = "CA" + secrets.token_hex(16)
    now = datetime.now(UTC)
    call = Call(
        call_sid=sid,
        from_number=number or "+447700900000",
        from_e164=number or "+447700900000",
        to_number=current_settings().caller_id or "",
        customer_id=customer.id if customer is not None else None,
        identified=customer is not None,
        route="default",
        flags={
            "flags": _flags_of(customer, ZoneInfo(current_settings().timezone)),
            "simulated": True,
        },
        status="in-progress",
        started_at=now,
        caller_joined_at=now,
        conference_name=f"cg-{sid}",
    )
    call.customer = customer
    sess.add(call)
    sess.flush()
    audit(
        sess,
        Actor.of(user),
        "call.simulated",
        "call",
        call.id,
        customer_id=call.customer_id,
        after={"call_sid": sid, "simulated": True},
        note="a demonstration call: no call was placed",
    )
    return call


def simulate_join(sess: Session, user: User, call_sid: str) -> Call:
    """The agent is put through to a demonstration call: Warn and End work on it from now."""
    call = sess.scalar(select(Call).where(Call.call_sid == call_sid).with_for_update())
    if call is None or not is_simulated(call):
        raise NotFound(f"no demonstration call {call_sid}")
    if call.answered_at is None and call.ended_at is None:
        now = datetime.now(UTC)
        call.answered_at = now
        call.conference_sid = "CF" + secrets.token_hex(16)
        call.agent_call_sid = "CA" + secrets.token_hex(16)
        call.agent_label = f"client:{user.name}"
        call.person_present_since = now
    return call


def _simulated_press(
    sess: Session, user: User, call_sid: str, kind: str, reason: Any
) -> AgentAction:
    """Warn or End on a demonstration call: recorded and audited as any press is, marked as
    simulated, and carried out without Twilio (a warning "plays" at once)."""
    action = agent_actions.record_press(sess, user, call_sid, kind, reason)
    action.detail = SIMULATED
    sess.commit()
    agent_actions.carry_out(sess, user, action, lambda: None)
    if kind == agent_actions.WARN:
        action.outcome = "ok"
    audit(
        sess,
        Actor.of(user),
        f"agent.{kind}.simulated",
        "agent_action",
        action.id,
        customer_id=action.customer_id,
        after={"kind": kind, "call_sid": call_sid, "outcome": action.outcome},
        note=SIMULATED,
    )
    sess.commit()
    return action
