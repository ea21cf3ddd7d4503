"""What the API gives: each JSON answer's body, as ``telephony.api.serialize`` (and the views that
build their own: alerts, live calls, a caller's decision, voicemails, parked events) makes it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from restrictions import sent_letters, sharing, voicemails
from restrictions.models import AlertStatus
from telephony.api.shapes import Answer, Choice
from telephony.api.shapes.common import Adjustments, AdjustmentTexts, Day, Method, Moment

# --- examples, as serialize makes them (kinds from restrictions.kinds, with their examples) -------

_SID = "CA" + "3f9c2a7e" * 4  # a CallSid: CA and 32 hex digits
_SHA256 = "9b2f" * 16

_APPEAL_EXAMPLE: dict[str, Any] = {
    "id": 3,
    "restriction_id": 12,
    "lodged_on": "2026-06-09",
    "grounds": "I only called about the one complaint.",
    "late_reason": None,
    "due_on": "2026-07-07",
    "outcome": None,
    "notes": None,
    "decided_on": None,
    "decided_by": None,
    "successor": None,
    "override_reason": None,
}
_SHARING_EXAMPLE: dict[str, Any] = {
    "id": 2,
    "restriction_id": 12,
    "shared_with": "Derby City Council, anti-social behaviour team",
    "shared_on": "2026-06-03",
    "purpose": "Joint case review of the calls to officers",
    "lawful_basis": "public_task",
    "recorded_by": "jo.supervisor",
    "recorded_at": "2026-06-03T14:05:00+00:00",
}
_RESTRICTION_EXAMPLE: dict[str, Any] = {
    "id": 12,
    "customer": "HMS-0001",
    "kind": "spoc",
    "reason": "Repeated calls to several officers about one complaint (5.1)",
    "reason_translations": {},
    "spoc": "+441332000555",
    "details": {"spoc": "+441332000555"},
    "active": True,
    "decided_at": "2026-06-02T09:30:00+00:00",
    "decided_by": "jo.supervisor",
    "state": "active",
    "decided_on": "2026-06-02",
    "notice_sent_on": "2026-06-02",
    "notice_method": "post",
    "apply_now": False,
    "urgent_reason": None,
    "notice_due_on": None,
    "takes_effect_on": "2026-06-02",
    "review_due_on": "2027-06-02",
    "last_reviewed_on": None,
    "appeal_last_day": "2026-06-30",
    "appeal_counted_from": {"letter": "decision", "dated": "2026-06-02"},
    "replaces": None,
    "appeals": [],
    "sharing": [_SHARING_EXAMPLE],
    "ended_at": None,
    "ended_by": None,
    "end_reason": None,
    "in_force": True,
    "lapsed_on": None,
    "lapse_letter_sent_on": None,
}
_CALL_EXAMPLE: dict[str, Any] = {
    "call_sid": _SID,
    "from": "+447400100001",
    "to": "+441332000100",
    "route": "spoc",
    "destination": "dial:+441332000555",
    "status": "completed",
    "started_at": "2026-06-04T10:02:11+00:00",
    "answered_at": "2026-06-04T10:02:30+00:00",
    "ended_at": "2026-06-04T10:09:02+00:00",
    "duration_seconds": 411,
    "emergency_selected": False,
    "flags": ["spoc"],
}
_LETTER_EXAMPLE: dict[str, Any] = {
    "id": 8,
    "kind": "decision",
    "restriction_id": 12,
    "review_id": None,
    "appeal_id": None,
    "title": "Single point of contact: our decision",
    "language": "en-GB",
    "letter_on": "2026-06-02",
    "sent_on": "2026-06-02",
    "method": "post",
    "template_version": "letters@4be1c0d29a7f3e58/fpdf2-2.8.3",
    "sha256": _SHA256,
    "recorded_by": "jo.supervisor",
    "recorded_at": "2026-06-02T09:41:00+00:00",
    "download": "/api/v1/letters/8",
}
_ACTION_EXAMPLE: dict[str, Any] = {
    "id": 5,
    "kind": "warn",
    "call_sid": _SID,
    "agent": "alex.agent",
    "reason": None,
    "outcome": "pending",
    "error": None,
    "detail": None,
    "at": "2026-06-04T10:05:40+00:00",
    "reviewed_at": None,
    "reviewed_by": None,
    "review_note": None,
}
_AUDIT_EXAMPLE: dict[str, Any] = {
    "at": "2026-06-02T09:30:00+00:00",
    "actor": "jo.supervisor",
    "action": "restriction.created",
    "entity": "restriction",
    "entity_id": 12,
    "before": None,
    "after": {"kind": "spoc", "state": "active"},
    "note": None,
}
_CUSTOMER_EXAMPLE: dict[str, Any] = {
    "reference": "HMS-0001",
    "name": "Pat Example",
    "language": "en-GB",
    "adjustments": {"slow_speech": True},
    "adjustment_texts": [
        "Speaks English",
        "Speak slowly and clearly: they asked for slower speech",
    ],
    "phone_numbers": ["+447400100001"],
    "postal_address": ["Flat 2", "14 Mill Lane", "Derby", "DE1 3AB"],
    "active_restrictions": [_RESTRICTION_EXAMPLE],
}
_DUE_EXAMPLE: dict[str, Any] = {
    "what": "review_overdue",
    "due_on": "2026-05-20",
    "days_overdue": 13,
    "restriction_id": 9,
    "kind": "written_only",
    "customer": "HMS-0004",
    "customer_name": "Chris Sample",
    "appeal_id": None,
    "escalated_to": "supervisors",
    "escalated_on": "2026-06-02",
    "escalations": 6,
}
_ALERT_EXAMPLE: dict[str, Any] = {
    "id": 4,
    "status": "open",
    "rule": "calls-per-hour",
    "limit": {"name": "calls-per-hour", "window_minutes": 60, "max_calls": 5, "max_minutes": None},
    "customer": "HMS-0001",
    "number": "+447400100001",
    "opened_at": "2026-06-04T11:15:00+00:00",
    "evidence": {
        "window_start": "2026-06-04T10:15:00+00:00",
        "window_end": "2026-06-04T11:15:00+00:00",
        "calls_in_window": 5,
        "talk_seconds": 640,
        "calls": [
            {
                "call_sid": _SID,
                "started_at": "2026-06-04T10:20:04+00:00",
                "number": "+447400100001",
                "duration_seconds": 95,
                "route": "default",
                "emergency": False,
            }
        ],
    },
    "closed_at": None,
    "closed_by": None,
    "reason": None,
    "restriction_id": None,
}
_LIVE_CALL_EXAMPLE: dict[str, Any] = {
    "call_sid": _SID,
    "from": "+447400100001",
    "caller_name": None,
    "customer": {
        "reference": "HMS-0001",
        "name": "Pat Example",
        "language": "en-GB",
        "language_name": "English",
        "adjustments": {"slow_speech": True},
        "adjustment_texts": [
            "Speaks English",
            "Speak slowly and clearly: they asked for slower speech",
        ],
    },
    "identified": True,
    "flags": ["no_engagement:the 2019 boundary fence dispute"],
    "flag_texts": ["Do not engage on: the 2019 boundary fence dispute"],
    "restrictions": [
        {
            "kind": "no_engagement",
            "label": "Not engaging on an issue",
            "since": "2026-06-02",
            "issue": "the 2019 boundary fence dispute",
            "in_force": True,
            "terms": ["Issue not to be engaged on: the 2019 boundary fence dispute"],
            "spoc_name": None,
        }
    ],
    "route": "default",
    "agent": "client:alex.agent",
    "state": "connected",
    "since": "2026-06-04T10:02:30+00:00",
    "started": "2026-06-04T10:02:11+00:00",
    "warned": False,
    "warning": None,
    "spoc_name": None,
    "wrap_up_note": None,
    "simulated": False,
}
_VOICEMAIL_EXAMPLE: dict[str, Any] = {
    "id": 7,
    "call_sid": _SID,
    "customer": {"reference": "HMS-0001", "name": "Pat Example"},
    "from": "+447400100001",
    "spoc": "client:sam.officer",
    "recorded_at": "2026-06-04T18:40:12+00:00",
    "duration_seconds": 42,
    "transcription": None,
    "status": "new",
    "handled_at": None,
    "handled_by": None,
    "audio_url": "/api/v1/voicemails/7/audio",
}
_EVENT_EXAMPLE: dict[str, Any] = {
    "id": 31,
    "source": "status",
    "call_sid": _SID,
    "event": "completed",
    "sequence_number": 4,
    "received_at": "2026-06-04T10:09:03+00:00",
    "attempts": 5,
    "reason": "KeyError: 'CallStatus'",
}


def _examples(*examples: dict[str, Any]) -> dict[str, Any]:
    return {"examples": list(examples)}


# --- errors ---------------------------------------------------------------------------------------


class Error(Answer):
    """Every error answer."""

    model_config = ConfigDict(
        json_schema_extra=_examples({"error": "no customer with reference 'HMS-0999'"})
    )

    error: str = Field(description="What is wrong, for a person.")


# --- calls, agents' presses, the audit trail, letters ---------------------------------------------


class Call(Answer):
    """One inbound call as callguard recorded it."""

    model_config = ConfigDict(json_schema_extra=_examples(_CALL_EXAMPLE))

    call_sid: str
    from_: str = Field(alias="from", description="As Twilio gave it.")
    to: str
    route: str
    destination: str | None = None
    status: str
    started_at: Moment | None = None
    answered_at: Moment | None = None
    ended_at: Moment | None = None
    duration_seconds: int | None = None
    emergency_selected: bool = False
    flags: list[str]


class AgentAction(Answer):
    """An agent's Warn or End press, with its outcome."""

    model_config = ConfigDict(json_schema_extra=_examples(_ACTION_EXAMPLE))

    id: int
    kind: Literal["warn", "end"]
    call_sid: str | None
    agent: str | None
    reason: str | None
    outcome: Literal["pending", "ok", "failed"] = Field(
        description=(
            "A Warn is pending until Twilio reports the announcement played (ok) or failed; an "
            "End is ok once the caller is off the line."
        )
    )
    error: str | None = Field(description="What Twilio said, when the outcome is failed.")
    detail: str | None = Field(
        description="What happened beyond the outcome (the caller had already left, say)."
    )
    at: Moment | None
    reviewed_at: Moment | None = Field(
        None, description="When a supervisor reviewed the press as an incident (policy 10.2)."
    )
    reviewed_by: str | None = Field(None, description="Who reviewed it.")
    review_note: str | None = Field(
        None, description="The reviewer's note: in a supervisor's answer only (null for agents)."
    )


class AuditEntry(Answer):
    """One entry of the audit trail: who did what to which record, before and after."""

    model_config = ConfigDict(json_schema_extra=_examples(_AUDIT_EXAMPLE))

    at: Moment | None
    actor: str
    action: str
    entity: str
    entity_id: int
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str | None


class SentLetter(Answer):
    """A letter as it was sent, kept unchanged."""

    model_config = ConfigDict(json_schema_extra=_examples(_LETTER_EXAMPLE))

    id: int
    kind: Annotated[str, Choice(lambda: sent_letters.KINDS)]
    restriction_id: int
    review_id: int | None = None
    appeal_id: int | None = None
    title: str = ""
    language: str
    letter_on: Day = Field(description="The date the letter bears.")
    sent_on: Day
    method: Method
    template_version: str = Field(
        description="What drew it: the letter templates, words and fpdf2."
    )
    sha256: str = Field(description="The SHA-256 of the PDF, in hex.")
    recorded_by: str
    recorded_at: Moment
    download: str = Field(description="Where its PDF is, as it was sent (GET, supervisors).")


# --- restrictions: appeals, sharing, reviews, what is due -----------------------------------------


class Appeal(Answer):
    """An appeal against a restriction (policy section 12) and, once decided, its outcome."""

    model_config = ConfigDict(json_schema_extra=_examples(_APPEAL_EXAMPLE))

    id: int
    restriction_id: int
    lodged_on: Day
    grounds: str
    late_reason: str | None = None
    due_on: Day
    outcome: str | None = Field(description="upheld, overturned or varied; null while undecided.")
    notes: str | None = None
    decided_on: Day | None = None
    decided_by: str | None = None
    successor: int | None = None
    override_reason: str | None = Field(
        None, description="Why an admin who took part in the restriction decided it all the same."
    )


class SharingRecord(Answer):
    """Information shared with another agency, as recorded."""

    model_config = ConfigDict(json_schema_extra=_examples(_SHARING_EXAMPLE))

    id: int
    restriction_id: int
    shared_with: str
    shared_on: Day
    purpose: str
    lawful_basis: Annotated[str, Choice(lambda: sharing.LAWFUL_BASES)]
    recorded_by: str = ""
    recorded_at: Moment | None = None


class AppealCountedFrom(Answer):
    """The letter the appeal's last day counts from."""

    letter: Literal["decision", "urgent_notice", "review"] = Field(
        description="The decision letter, or a review outcome letter."
    )
    dated: Day


class Restriction(Answer):
    """A restriction. The kind's own fields also appear at the top level, as in details."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_examples(_RESTRICTION_EXAMPLE))

    id: int
    customer: str | None = Field(description="The customer's reference.")
    kind: str = Field(description="The kind's name.")
    reason: str
    reason_translations: dict[str, str] = Field(
        default_factory=dict,
        description="The reason in other languages, by language tag (may be empty).",
    )
    details: dict[str, Any] = Field(
        description="The kind's own fields (also copied to the top level)."
    )
    active: bool
    decided_at: Moment
    decided_by: str | None = Field(description="The staff member who decided.")
    notice_sent_on: Day | None
    review_due_on: Day | None
    state: Literal["awaiting_notice", "active", "ended"]
    decided_on: Day | None = None
    notice_method: str | None = None
    apply_now: bool = False
    urgent_reason: str | None = None
    notice_due_on: Day | None = None
    takes_effect_on: Day | None = None
    last_reviewed_on: Day | None = None
    appeal_last_day: Day | None = Field(
        None,
        description=(
            "The last day to appeal (12.2): 20 working days after the latest letter that gave "
            "the right of appeal; null while nothing was sent, or ended."
        ),
    )
    appeal_counted_from: AppealCountedFrom | None = None
    replaces: int | None = None
    appeals: list[Appeal]
    sharing: list[SharingRecord] = Field(
        default_factory=list, description="Information shared with other agencies (policy 10.1)."
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="On creation: which restriction overrides this one on calls.",
    )
    ended_at: Moment | None
    ended_by: str | None
    end_reason: str | None
    in_force: bool = Field(
        False,
        description=(
            "Whether it routes calls now: active, or varied while its successor awaits its "
            "notice (the old terms apply until the new ones take effect)."
        ),
    )
    lapsed_on: Day | None = Field(
        None, description="The day it lapsed, its review overdue ([reviews])."
    )
    lapse_letter_sent_on: Day | None = Field(
        None, description="When the letter about its lapse was sent."
    )


class LapseLetterRecorded(Restriction):
    """The restriction, with its lapse letter as kept."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra=_examples(
            {
                **_RESTRICTION_EXAMPLE,
                "active": False,
                "state": "ended",
                "appeal_last_day": None,
                "appeal_counted_from": None,
                "ended_at": "2027-07-02T06:00:00+00:00",
                "ended_by": None,
                "end_reason": (
                    "lapsed: its review was due on 2027-06-02 and is 30 days overdue "
                    "([reviews] lapse_after_days = 30)"
                ),
                "in_force": False,
                "lapsed_on": "2027-07-02",
                "lapse_letter_sent_on": "2027-07-05",
                "letter": {
                    **_LETTER_EXAMPLE,
                    "id": 15,
                    "kind": "lapse",
                    "title": "Single point of contact: it has lapsed",
                    "letter_on": "2027-07-05",
                    "sent_on": "2027-07-05",
                    "recorded_at": "2027-07-05T10:12:00+00:00",
                    "download": "/api/v1/letters/15",
                },
            }
        ),
    )

    letter: SentLetter


class Review(Answer):
    """A review of a restriction (policy 10.4) and what it decided."""

    model_config = ConfigDict(
        json_schema_extra=_examples(
            {
                "id": 4,
                "restriction_id": 12,
                "reviewed_on": "2027-05-20",
                "outcome": "continue",
                "notes": "Calls now come through the named officer only.",
                "next_review_on": "2028-05-20",
                "reviewer": "jo.supervisor",
                "successor": None,
                "restriction": {
                    **_RESTRICTION_EXAMPLE,
                    "review_due_on": "2028-05-20",
                    "last_reviewed_on": "2027-05-20",
                    "appeal_last_day": "2027-06-18",
                    "appeal_counted_from": {"letter": "review", "dated": "2027-05-20"},
                },
            }
        ),
    )

    id: int
    restriction_id: int
    reviewed_on: Day
    outcome: str
    notes: str
    next_review_on: Day | None = None
    reviewer: str = ""
    successor: int | None = None
    restriction: Restriction


class DueItem(Answer):
    """Something a supervisor must do about a restriction, and by when."""

    model_config = ConfigDict(json_schema_extra=_examples(_DUE_EXAMPLE))

    what: Literal[
        "letter", "notice_overdue", "review_due", "review_overdue", "appeal", "lapse_letter"
    ]
    due_on: Day | None
    days_overdue: int
    restriction_id: int
    kind: str
    customer: str | None = None
    customer_name: str | None = None
    appeal_id: int | None = None
    escalated_to: Literal["supervisors", "admins"] | None = Field(
        None, description="An overdue review: on whom the daily job last pressed it."
    )
    escalated_on: Day | None = Field(None, description="The latest day it was pressed.")
    escalations: int = Field(0, description="On how many days this overdue review was pressed.")


class DueList(Answer):
    """Everything due: letters, notices, reviews, appeals and lapse letters, oldest first."""

    model_config = ConfigDict(json_schema_extra=_examples({"due": [_DUE_EXAMPLE]}))

    due: list[DueItem]


class ReviewsDue(Answer):
    """Restrictions due for review within 30 days, and overdue ones, oldest first."""

    model_config = ConfigDict(json_schema_extra=_examples({"reviews": [_DUE_EXAMPLE]}))

    reviews: list[DueItem]


# --- customers ------------------------------------------------------------------------------------


class Customer(Answer):
    """A customer: who they are, how callguard speaks to them, their restrictions in force."""

    model_config = ConfigDict(json_schema_extra=_examples(_CUSTOMER_EXAMPLE))

    reference: str
    name: str
    language: str
    adjustments: Adjustments
    adjustment_texts: AdjustmentTexts = Field(default_factory=list)
    phone_numbers: list[str]
    postal_address: list[str] = Field(
        description="The lines of their postal address, for letters (empty: unknown)."
    )
    active_restrictions: list[Restriction]


class CustomerRecord(Customer):
    """A customer with their recent calls, agent actions, audit trail and letters sent."""

    model_config = ConfigDict(
        json_schema_extra=_examples(
            {
                **_CUSTOMER_EXAMPLE,
                "recent_calls": [_CALL_EXAMPLE],
                "agent_actions": [_ACTION_EXAMPLE],
                "audit": [_AUDIT_EXAMPLE],
                "letters": [_LETTER_EXAMPLE],
            }
        )
    )

    recent_calls: list[Call]
    agent_actions: list[AgentAction]
    audit: list[AuditEntry]
    letters: list[SentLetter] = Field(description="Every letter sent to them, newest first.")


class Attached(Answer):
    """What attaching did: counts and alerts moved with the calls."""

    model_config = ConfigDict(
        json_schema_extra=_examples(
            {
                "customer": "HMS-0001",
                "number_added": "+447400100002",
                "calls": [{**_CALL_EXAMPLE, "from": "+447400100002"}],
                "alerts_merged": [6],
                "alerts_opened": [],
            }
        )
    )

    customer: str = Field(description="The customer's reference.")
    number_added: str | None = Field(description="The number added to their record, if one was.")
    calls: list[Call] = Field(description="The calls that became theirs.")
    alerts_merged: list[int] = Field(description="The number's open alerts, closed as merged.")
    alerts_opened: list[int] = Field(description="The customer's alerts their calls now call for.")


# --- alerts ---------------------------------------------------------------------------------------


class Alert(Answer):
    """Excessive contact (policy section 6): evidence for a person to decide on."""

    model_config = ConfigDict(json_schema_extra=_examples(_ALERT_EXAMPLE))

    id: int
    status: Annotated[str, Choice(lambda: [s.value for s in AlertStatus])]
    rule: str = Field(description="The contact rule's name.")
    limit: dict[str, Any] = Field(description="The contact rule as it was.")
    customer: str | None = Field(description="The customer's reference, if the caller is one.")
    number: str | None
    opened_at: Moment
    evidence: dict[str, Any] = Field(description="The calls that broke the rule.")
    closed_at: Moment | None
    closed_by: str | None
    reason: str | None
    restriction_id: int | None


class AlertList(Answer):
    """Contact alerts, newest first."""

    model_config = ConfigDict(json_schema_extra=_examples({"alerts": [_ALERT_EXAMPLE]}))

    alerts: list[Alert]


# --- live calls, and a caller's decision ----------------------------------------------------------

FlagText = Annotated[str, Field(description="A flag in words.")]


class LiveCustomer(Answer):
    """The customer on the call, with their adjustments."""

    reference: str
    name: str
    language: str
    language_name: str = Field(description="Their language as staff read it: Welsh (Cymraeg).")
    adjustments: Adjustments
    adjustment_texts: AdjustmentTexts


class LiveRestriction(Answer):
    """An active restriction, with the kind's own fields (as recorded) and its terms in words."""

    model_config = ConfigDict(extra="allow")

    kind: str
    label: str
    since: Day
    in_force: bool = Field(
        description="It routes calls now (false while its notice has not been sent)."
    )
    terms: list[str] = Field(
        description='The kind\'s own fields in words: "Permitted days and times: …".'
    )
    spoc_name: str | None = Field(
        description="The person this kind puts calls through to, as staff know them."
    )


class LiveCall(Answer):
    """A live call, with what the agent must know about it."""

    model_config = ConfigDict(json_schema_extra=_examples(_LIVE_CALL_EXAMPLE))

    call_sid: str
    from_: str = Field(alias="from")
    caller_name: str | None = None
    customer: LiveCustomer | None
    identified: bool
    flags: list[str]
    flag_texts: list[FlagText]
    restrictions: list[LiveRestriction] = Field(default_factory=list)
    route: str = ""
    agent: str | None = None
    state: Literal["connected", "waiting"] = Field(
        description=(
            "connected: a person is with the caller (Warn and End work); waiting: the caller is "
            "being put through."
        )
    )
    since: Moment | None = Field(
        None, description="When a person and the caller were put together."
    )
    started: Moment
    warned: bool = Field(description="A Warn on this call has played (End then needs no reason).")
    warning: Literal["pending", "ok", "failed"] | None = Field(
        description=(
            "The latest Warn: pending until Twilio says it played (ok) or could not (failed)."
        )
    )
    spoc_name: str | None = Field(
        description="The person a restriction puts the caller's calls through to, if any."
    )
    wrap_up_note: str | None = Field(description="The agent's note on the call so far.")
    simulated: bool = Field(
        description="A practice call from the simulator: Warn and End are recorded, not sent."
    )


class LiveCallList(Answer):
    """The calls going on now."""

    model_config = ConfigDict(json_schema_extra=_examples({"calls": [_LIVE_CALL_EXAMPLE]}))

    calls: list[LiveCall]


class CallerCustomer(Answer):
    """The customer whose number it is."""

    reference: str
    name: str


class CallerRestriction(Answer):
    """An active restriction, by kind and label."""

    kind: str
    label: str


class CallerDecision(Answer):
    """callguard's decision for a caller."""

    model_config = ConfigDict(
        json_schema_extra=_examples(
            {
                "number": "+447400100001",
                "identified": True,
                "customer": {"reference": "HMS-0001", "name": "Pat Example"},
                "route": "written_only",
                "destination": None,
                "ends_call": True,
                "message": "written_only",
                "words": (
                    "Thank you for calling Derby Homes. We now deal with your enquiries in "
                    "writing only, so we cannot take your call."
                ),
                "language": "en-GB",
                "slow_speech": False,
                "restrictions": [{"kind": "written_only", "label": "Writing only"}],
                "flags": ["written_only"],
                "flag_texts": ["Writing only"],
                "twiml_url": "https://callguard.example.org/twilio/voice/incoming",
                "fallback": False,
                "task_attributes": None,
            }
        )
    )

    number: str | None
    identified: bool
    customer: CallerCustomer | None
    route: str = Field(
        description="The route's name: default, spoc, written_only, outside_window …"
    )
    destination: str | None = Field(description="Where the call goes (dial:…, taskrouter:WW…, …).")
    ends_call: bool
    message: str | None = Field(description="The message's key when the call ends.")
    words: str | None = Field(description="What the caller would hear, in their language.")
    language: str
    slow_speech: bool
    restrictions: list[CallerRestriction]
    flags: list[str]
    flag_texts: list[str]
    twiml_url: str = Field(description="callguard's inbound webhook: hand the call to it whole.")
    fallback: bool = Field(description="The decision could not be made in time: the default route.")
    task_attributes: dict[str, Any] | None = Field(
        description="The task's attributes for a taskrouter: route."
    )


# --- voicemails, parked events --------------------------------------------------------------------


class VoicemailCustomer(Answer):
    """The customer who called, when the number is theirs."""

    reference: str
    name: str


class Voicemail(Answer):
    """A message a customer left for their named contact (SPOC)."""

    model_config = ConfigDict(json_schema_extra=_examples(_VOICEMAIL_EXAMPLE))

    id: int
    call_sid: str | None
    customer: VoicemailCustomer | None
    from_: str | None = Field(alias="from", description="The caller's number, as Twilio gave it.")
    spoc: str | None = Field(description="The named contact: client:<user name> or a phone number.")
    recorded_at: Moment
    duration_seconds: int
    transcription: str | None = Field(description="Twilio's transcript, when transcription is on.")
    status: Annotated[str, Choice(lambda: voicemails.STATUSES)]
    handled_at: Moment | None = None
    handled_by: str | None = None
    audio_url: str = Field(description="Where its audio is fetched through callguard.")


class VoicemailList(Answer):
    """Voicemails left for named contacts, newest first."""

    model_config = ConfigDict(json_schema_extra=_examples({"voicemails": [_VOICEMAIL_EXAMPLE]}))

    voicemails: list[Voicemail]


class ParkedEvent(Answer):
    """A Twilio callback set aside because it could not be processed."""

    model_config = ConfigDict(json_schema_extra=_examples(_EVENT_EXAMPLE))

    id: int
    source: str
    call_sid: str | None
    event: str
    sequence_number: int
    received_at: Moment
    attempts: int
    reason: str | None = Field(None, description="Why it was parked (null once it is put back).")


class ParkedEventList(Answer):
    """The parked callbacks, oldest first."""

    model_config = ConfigDict(json_schema_extra=_examples({"events": [_EVENT_EXAMPLE]}))

    events: list[ParkedEvent]
