"""Agents' Warn and End on live calls (policy 9.2: a clear warning first; 4.6: a call may be
ended when staff feel threatened). Every press is an AgentAction on the record, audited, with
its outcome, whether or not Twilio carried it out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from restrictions import kinds
from restrictions.calls import end_by_agent
from restrictions.errors import Conflict, Forbidden, Invalid, NotFound
from restrictions.lifecycle import Actor, audit
from restrictions.models import AgentAction, Call, Role, User
from restrictions.validation import required_text

WARN = "warn"
END = "end"


WAITING_SHOWN_FOR = timedelta(minutes=15)  # a waiting call older than this lost its callbacks


def live_calls(sess: Session, agent: User | None = None, now: datetime | None = None) -> list[Call]:
    """Calls in progress: answered by a person and not yet over, and callers waiting in their
    conference for someone to be put through (so a call never drops off the list while it is
    handed between people). For an agent: their own (client:<name>) and the contact centre's,
    which any agent may have picked up; others' SPOC calls are not."""
    now = now or datetime.now(UTC)
    connected = and_(Call.answered_at.is_not(None), Call.conference_sid.is_not(None))
    waiting = and_(
        Call.answered_at.is_(None),
        Call.conference_name.is_not(None),
        Call.moved_on_at.is_(None),
        Call.emergency_selected_at.is_(None),
        Call.started_at > now - WAITING_SHOWN_FOR,
    )
    query = select(Call).where(Call.ended_at.is_(None), or_(connected, waiting))
    if agent is not None:
        mine = f"client:{agent.name}"
        query = query.where(
            or_(
                Call.agent_label == mine,
                Call.route_destination == mine,
                and_(
                    Call.route.not_in(kinds.person_kinds()),
                    or_(
                        Call.agent_label.is_(None),
                        and_(
                            ~Call.agent_label.startswith("client:"),
                            ~Call.agent_label.startswith(UNMAPPED_WORKER),
                        ),
                    ),
                ),
            )
        )
    return list(sess.scalars(query.order_by(Call.started_at, Call.id)))


ENDING = "ending"


def live_call(sess: Session, call_sid: str, kind: str = WARN) -> Call:
    """The call an agent pressed a button on (its row locked for this transaction): 404 if
    unknown, 409 if it is not live or is being ended already. End is still taken on a call whose
    caller has left while a person is in its conference: it closes the conference for them."""
    call = sess.scalar(select(Call).where(Call.call_sid == call_sid).with_for_update())
    if call is None:
        raise NotFound(f"no call {call_sid}")
    left_behind = kind == END and call.person_present_since is not None
    if call.ended_at is not None and not left_behind:
        raise Conflict(f"call {call_sid} has already ended")
    if call.status == ENDING:
        raise Conflict(f"call {call_sid} is being ended already")
    if call.conference_sid is None or call.answered_at is None:
        raise Conflict(f"call {call_sid} is not connected to an agent yet")
    return call


# A TaskRouter worker whose contact_uri names no client:<user> (restrictions.task_events.WORKER)
UNMAPPED_WORKER = "worker:"


def may_press(user: User, call: Call) -> bool:
    """Supervisors may press on any call; an agent only on a call they are on. A call belongs
    to the person it was routed to, whatever form their destination takes: a SPOC's call is
    theirs alone (``client:<name>``; one routed to a SPOC's phone number is no agent's: their
    supervisors act for them); the contact centre's calls are any agent's, who may have picked
    them up. A call a TaskRouter worker accepted is theirs (``client:<name>``, their
    contact_uri), or, for a worker who is no member of staff, no agent's."""
    if user.role_enum.may(Role.SUPERVISOR):
        return True
    mine = f"client:{user.name}"
    if kinds.routes_to_person(call.route) or (call.route_destination or "").startswith("client:"):
        return mine in (call.route_destination, call.agent_label)
    label = call.agent_label or ""
    if label.startswith(UNMAPPED_WORKER):
        return False  # a TaskRouter worker who is no member of staff: their supervisors act
    return not label.startswith("client:") or label == mine


def was_warned(sess: Session, call: Call) -> bool:
    return (
        sess.scalar(
            select(AgentAction.id)
            .where(
                AgentAction.call_id == call.id,
                AgentAction.kind == WARN,
                AgentAction.outcome == "ok",
            )
            .limit(1)
        )
        is not None
    )


def _snapshot(action: AgentAction) -> dict[str, Any]:
    return {
        "kind": action.kind,
        "call_sid": action.call.call_sid,
        "reason": action.reason,
        "outcome": action.outcome,
        "error": action.error,
    }


def record_press(
    sess: Session, user: User, call_sid: str, kind: str, reason: Any = None
) -> AgentAction:
    """Check the press and put it on the record (outcome pending); the caller commits. An End
    marks the call as ending at once, so a second End (or a press after it) is a 409."""
    call = live_call(sess, call_sid, kind)
    if not may_press(user, call):
        raise Forbidden(f"call {call_sid} is another member of staff's call")
    if reason is not None and not isinstance(reason, str):
        raise Invalid("reason must be text")
    text = required_text(reason, "reason", max_length=2000) if reason and reason.strip() else None
    if kind == END and text is None and not was_warned(sess, call):
        raise Invalid("ending a call without an earlier warning needs a reason (policy 9.2, 4.6)")
    if kind == END:
        call.status = ENDING
    action = AgentAction(
        call_id=call.id,
        customer_id=call.customer_id,
        user_id=user.id,
        kind=kind,
        reason=text,
        outcome="pending",
    )
    action.call = call
    sess.add(action)
    sess.flush()
    audit(
        sess,
        Actor.of(user),
        f"agent.{kind}",
        "agent_action",
        action.id,
        customer_id=call.customer_id,
        after=_snapshot(action),
    )
    return action


def carry_out(sess: Session, user: User, action: AgentAction, do: Callable[[], None]) -> None:
    """Run the Twilio side of a press and record how it went; failures are recorded, then raised."""
    try:
        do()
    except Exception as exc:
        action.outcome = "failed"
        action.error = str(exc)
        if action.kind == END and action.call.status == ENDING:
            action.call.status = "in-progress"  # Twilio did not end it: the call goes on
        audit(
            sess,
            Actor.of(user),
            f"agent.{action.kind}.failed",
            "agent_action",
            action.id,
            customer_id=action.customer_id,
            after=_snapshot(action),
        )
        sess.commit()
        raise
    if action.kind == END:
        action.outcome = "ok"
        end_by_agent(action.call, datetime.now(UTC))
    # a Warn stays ``pending`` until Twilio reports the announcement played (or failed):
    # restrictions.calls.settle_warning
    sess.commit()


def incidents(
    sess: Session,
    *,
    kind: str | None = None,
    outcome: str | None = None,
    unreviewed: bool = False,
    limit: int = 200,
) -> list[AgentAction]:
    """The supervisor's incident queue: newest first."""
    query = select(AgentAction)
    if kind:
        query = query.where(AgentAction.kind == kind)
    if outcome:
        query = query.where(AgentAction.outcome == outcome)
    if unreviewed:
        query = query.where(AgentAction.reviewed_at.is_(None))
    return list(
        sess.scalars(
            query.order_by(AgentAction.created_at.desc(), AgentAction.id.desc()).limit(limit)
        )
    )


REVIEW_NOTE_MAX = 5000


def mark_reviewed(sess: Session, supervisor: User, action_id: int, note: Any = None) -> AgentAction:
    """A supervisor reviewed the incident, with what they make of it (``note``, optional; kept
    on the incident and the audit trail). Reviewing it again changes nothing."""
    action = sess.get(AgentAction, action_id)
    if action is None:
        raise NotFound(f"no incident {action_id}")
    text = None
    if note is not None and str(note).strip():
        text = required_text(note, "note", max_length=REVIEW_NOTE_MAX)
    if action.reviewed_at is None:
        action.reviewed_at = datetime.now(UTC)
        action.reviewed_by_id = supervisor.id
        action.review_note = text
        audit(
            sess,
            Actor.of(supervisor),
            "incident.reviewed",
            "agent_action",
            action.id,
            customer_id=action.customer_id,
            note=text,
        )
    return action
