"""The JSON API as an OpenAPI 3.1 document, built from code each time it is asked for.

Every operation is declared once below: its path, the role its view demands (``@api_role``), what
it is for and when it fails. What it takes and answers are named shapes (``telephony.api.shapes``,
pydantic models): their schemas, with an example of every answer, are generated from the models,
and the same models check each request body (``check_body``). The body for a new restriction is
made from the registered kinds (``restrictions.kinds``), so a kind registered at runtime is
described without touching this module. ``GET /api/v1/openapi.json``
answers the document and ``GET /api/v1/docs`` a plain page for people, made from the same
document. tests/telephony/test_openapi.py fails when a route under /api/v1 is not described here.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Response, current_app, has_app_context, jsonify, render_template
from pydantic import TypeAdapter

from restrictions import kinds
from restrictions.errors import Invalid
from restrictions.models import AlertStatus, Role
from restrictions.validation import (
    MAX_INT,
)
from telephony.api import bp, shapes
from telephony.api.shapes import answers, bodies
from telephony.auth import api_role, token_or_page_role
from telephony.config import default
from telephony.inputs import MAX_JSON_DEPTH, SID

Schema = dict[str, Any]

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"
PREFIX = "/api/v1"
JSON = "application/json"
HTML = "text/html"
BEARER = "bearerToken"
PAGE_SESSION = "pageSession"  # the staff pages' signed-in session cookie: GET /docs only
ROLES = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)  # each may do what the ones before it may

WHO = {
    Role.AGENT: "any signed-in staff member (agent, supervisor or admin)",
    Role.SUPERVISOR: "a supervisor or an admin",
    Role.ADMIN: "an admin",
    Role.INTEGRATION: "an integration (another system's token), a supervisor or an admin",
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


# --- parameters -----------------------------------------------------------------------------

PATH_PARAMETERS: dict[str, Schema] = {
    "reference": {
        "description": "The customer's reference (the landlord's own).",
        "schema": {"type": "string", "maxLength": 64},
    },
    "restriction_id": {
        "description": "The restriction's id.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
    },
    "alert_id": {
        "description": "The alert's id.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
    },
    "appeal_id": {
        "description": "The appeal's id.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
    },
    "letter_id": {
        "description": "The sent letter's id (a customer's record lists their letters).",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
    },
    "event_id": {
        "description": "The parked event's id.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
    },
    "voicemail_id": {
        "description": "The voicemail's id.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
    },
    "call_sid": {
        "description": "Twilio's CallSid of the caller's call (two letters and 32 hex digits).",
        "schema": {"type": "string", "pattern": SID.pattern},
    },
    "number": {
        "description": "The caller's number in E.164 form, for example +447400100001.",
        "schema": {"type": "string", "pattern": r"^\+[0-9]{6,15}$", "maxLength": 16},
    },
}


def query(name: str, description: str, schema: Schema) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


# --- operations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One operation; ``path`` is written as OpenAPI writes it, ``/api/v1/customers/{reference}``.

    ``errors`` are the operation's own error answers, with when they happen. The document adds
    the rest: 400, 401 and 503 to every operation, 403 to every operation above the agent role,
    413 and 415 to every operation that reads a body.
    """

    method: str
    path: str
    operation_id: str
    summary: str
    role: Role
    tag: str
    response: str | Schema  # a shape's name (JSON), or a schema for a PDF or a page
    status: int = 200
    description: str = ""
    parameters: tuple[Schema, ...] = ()
    body: str | None = None  # a component schema
    body_required: bool = True
    errors: Mapping[int, str] = field(default_factory=dict)
    media_type: str = JSON
    session_role: Role | None = None  # also open to a browser signed in with this role or above


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "get",
        "/callers/{number}",
        "getCallerDecision",
        "What callguard would do with a call from this number",
        Role.INTEGRATION,
        "Callers",
        "CallerDecision",
        description=(
            "The routing decision, as the inbound webhook makes it (the routing cache first, "
            "the same deadline and fail-safe): the route, whether the call must end and what the "
            "caller would hear, the restrictions and flags in words, and TaskRouter task "
            "attributes when the route is taskrouter:. For the landlord's other systems."
        ),
        errors={
            404: "Not used: an unknown number is an unidentified caller's decision.",
            422: "The number is not in E.164 form.",
        },
    ),
    Operation(
        "post",
        "/customers",
        "createCustomer",
        "Create a customer",
        Role.SUPERVISOR,
        "Customers",
        "Customer",
        status=201,
        description="Their phone numbers are how callguard recognises them when they call.",
        body="NewCustomer",
        errors={
            409: "A customer with this reference exists, or a number belongs to another customer.",
            422: "A field is missing or invalid; the message names it.",
        },
    ),
    Operation(
        "get",
        "/customers/{reference}",
        "getCustomer",
        "A customer's record",
        Role.AGENT,
        "Customers",
        "CustomerRecord",
        description=(
            "The customer, their active restrictions, their 20 most recent calls and agent "
            "actions, and the 50 newest entries of their audit trail."
        ),
        errors={404: "No customer has this reference."},
    ),
    Operation(
        "patch",
        "/customers/{reference}",
        "updateCustomer",
        "Change a customer",
        Role.SUPERVISOR,
        "Customers",
        "Customer",
        description="Only the fields sent change; a change is written to the audit trail.",
        body="CustomerChanges",
        errors={
            404: "No customer has this reference.",
            409: "A number belongs to another customer.",
            422: "A field is invalid; the message names it.",
        },
    ),
    Operation(
        "post",
        "/customers/{reference}/numbers",
        "attachNumber",
        "Add a number to a customer, with its past calls",
        Role.SUPERVISOR,
        "Customers",
        "Attached",
        description=(
            "The number is theirs (added to their record unless it is there already), and so is "
            "every past call from it that is not yet anyone's: the calls' contact counts move "
            "to the customer, the number's open alerts close as merged, and the customer's "
            "alerts are evaluated over all their calls. On the audit trail."
        ),
        body="AttachNumber",
        errors={
            404: "No customer has this reference.",
            409: "The number belongs to another customer.",
            422: "The number is not a phone number, or they have as many numbers as allowed.",
        },
    ),
    Operation(
        "post",
        "/customers/{reference}/restrictions",
        "createRestriction",
        "Record a restriction (policy 10.1)",
        Role.SUPERVISOR,
        "Restrictions",
        "Restriction",
        status=201,
        description=(
            "The body depends on the kind: each kind has its own fields. The restriction is in "
            "force at once; its review falls due 12 months on (10.4)."
        ),
        body="NewRestriction",
        errors={
            404: "No customer has this reference.",
            422: "The kind is unknown, or the reason or one of the kind's fields is invalid.",
        },
    ),
    Operation(
        "post",
        "/restrictions/{restriction_id}/end",
        "endRestriction",
        "End a restriction",
        Role.SUPERVISOR,
        "Restrictions",
        "Restriction",
        description=(
            "A restriction ends only by a recorded decision; it stays on the record. The letter "
            "telling the customer (the end letter: from when, and why) is drawn now and kept as "
            "sent (?about=end, and the customer's letters)."
        ),
        body="EndRestriction",
        errors={
            404: "No restriction has this id.",
            409: "The restriction has already ended.",
            422: "The reason is missing or too long, or letter_method is unknown.",
        },
    ),
    Operation(
        "get",
        "/restrictions/{restriction_id}",
        "getRestriction",
        "A restriction, with its state, notice, review and appeals",
        Role.AGENT,
        "Restrictions",
        "Restriction",
        errors={404: "No restriction has this id."},
    ),
    Operation(
        "post",
        "/restrictions/{restriction_id}/notice",
        "recordNotice",
        "Record that the written notice was sent (policy 10.2)",
        Role.SUPERVISOR,
        "Restrictions",
        "Restriction",
        description=(
            "The restriction applies to calls from the day the notice was sent (unless it was "
            "applied at once), and its first review falls due 12 months later. The decision "
            "letter (the urgent notice, for one applied at once) is drawn at this moment, dated "
            "sent_on, and kept as sent: its download is then that letter, byte for byte. "
            "sent_on must be no earlier than the decision's decided_on and no later than today "
            "on the landlord's clock (Europe/London); otherwise 422 and nothing is kept."
        ),
        body="Notice",
        errors={
            404: "No restriction has this id.",
            409: "The notice is already recorded, or the restriction has ended.",
            422: (
                "sent_on is missing, not a date, after today or before the decision's "
                "decided_on, or method is unknown; the message says which. Nothing is recorded."
            ),
        },
    ),
    Operation(
        "get",
        "/restrictions/{restriction_id}/letter",
        "decisionLetter",
        "The decision letter (PDF as sent; ?format=html for the preview)",
        Role.SUPERVISOR,
        "Restrictions",
        {"type": "string", "format": "binary"},
        description=(
            "In the customer's language: the behaviour, what is restricted, from when, the "
            "review date, how to appeal and by when, the Housing Ombudsman, emergency repairs "
            "and 999. Once the letter was sent, the PDF is the letter kept as sent, byte for "
            "byte (header X-Letter: sent, with X-Letter-Id and X-Letter-SHA256, the SHA-256 of "
            "the bytes). The HTML, and the PDF of a letter not sent yet, are previews drawn from "
            "today's record, marked PREVIEW across their top (X-Letter: preview)."
        ),
        parameters=(
            query("format", "html for the preview.", {"type": "string", "enum": ["html"]}),
            query(
                "about",
                "decision (the default), appeal (the latest appeal's outcome), review (the "
                "latest review's outcome), end (the end letter) or lapse (the letter about its "
                "lapse).",
                {"type": "string", "enum": ["decision", "appeal", "review", "end", "lapse"]},
            ),
        ),
        errors={
            404: (
                "No restriction has this id, no appeal or review was decided yet, (about=end) "
                "it has not ended or it lapsed, or (about=lapse) it has not lapsed."
            ),
            422: "about is not decision, appeal, review, end or lapse.",
        },
        media_type="application/pdf",
    ),
    Operation(
        "get",
        "/letters/{letter_id}",
        "getSentLetter",
        "A letter as it was sent (PDF)",
        Role.SUPERVISOR,
        "Restrictions",
        {"type": "string", "format": "binary"},
        description=(
            "The kept PDF, byte for byte, as it went to the customer (X-Letter-SHA256 is its "
            "SHA-256). A customer's record lists their letters, each with this download."
        ),
        errors={404: "No sent letter has this id."},
        media_type="application/pdf",
    ),
    Operation(
        "post",
        "/restrictions/{restriction_id}/review",
        "reviewRestriction",
        "Review a restriction (policy 10.4)",
        Role.SUPERVISOR,
        "Restrictions",
        "Review",
        description=(
            "continue (notes; the next review at most 12 months on), vary (this one ends and "
            "successor replaces it, linked) or end. The outcome letter is drawn now and kept as "
            "sent (?about=review); a review that continues it gives the customer a new 20 "
            "working days to appeal, from the letter's date."
        ),
        body="ReviewBody",
        errors={
            404: "No restriction has this id.",
            409: "The restriction has ended or is not in force yet.",
            422: "The outcome, notes, next_review_on or successor is missing or wrong.",
        },
    ),
    Operation(
        "get",
        "/reviews",
        "reviewsDue",
        "Restrictions due for review within 30 days, and overdue ones, oldest first",
        Role.SUPERVISOR,
        "Restrictions",
        "ReviewsDue",
    ),
    Operation(
        "post",
        "/restrictions/{restriction_id}/appeals",
        "lodgeAppeal",
        "Lodge an appeal (policy 12.2)",
        Role.SUPERVISOR,
        "Appeals",
        "Appeal",
        status=201,
        description=(
            "Within 20 working days of the latest letter that gave the right of appeal (the "
            "decision letter, or a later review outcome letter; England and Wales bank holidays "
            "excluded: the restriction's appeal_last_day), or later with a late_reason that is "
            "recorded. The restriction stays in force "
            "while the appeal is heard (12.3); the decision is due 20 working days after "
            "lodging."
        ),
        body="NewAppeal",
        errors={
            404: "No restriction has this id.",
            409: "An earlier appeal is still to be decided, or the restriction has ended.",
            422: "lodged_on is in the future, before the notice, or late without a late_reason.",
        },
    ),
    Operation(
        "post",
        "/restrictions/{restriction_id}/sharing",
        "recordSharing",
        "Record information shared with another agency (policy 10.1)",
        Role.SUPERVISOR,
        "Restrictions",
        "SharingRecord",
        status=201,
        description=(
            "Who it was shared with, on which day, why, and the lawful basis (UK GDPR Article "
            "6(1)). It is listed on the restriction (sharing) and on the audit trail."
        ),
        body="NewSharing",
        errors={
            404: "No restriction has this id.",
            422: "A field is missing, too long, shared_on is in the future, or the lawful basis "
            "is not one of those listed.",
        },
    ),
    Operation(
        "get",
        "/appeals/{appeal_id}",
        "getAppeal",
        "An appeal",
        Role.SUPERVISOR,
        "Appeals",
        "Appeal",
        errors={404: "No appeal has this id."},
    ),
    Operation(
        "post",
        "/appeals/{appeal_id}/decision",
        "decideAppeal",
        "Decide an appeal",
        Role.SUPERVISOR,
        "Appeals",
        "Appeal",
        description=(
            "By someone who did not decide, review, vary or continue the restriction (nor one it "
            "replaced, nor uphold an earlier appeal): upheld (it stays), overturned (it ends at "
            "once) or varied (successor replaces it). An admin who took part may decide it all "
            "the same with an override_reason, which is recorded on the appeal and the audit "
            "trail. The outcome letter is drawn now and kept as sent (?about=appeal)."
        ),
        body="AppealDecision",
        errors={
            403: (
                "The person deciding took part in the restriction (decided, reviewed, varied or "
                "continued it), and is not an admin giving override_reason; the error says how."
            ),
            404: "No appeal has this id.",
            409: "The appeal was already decided.",
            422: "The outcome, notes or successor is missing or wrong.",
        },
    ),
    Operation(
        "post",
        "/restrictions/{restriction_id}/lapse-letter",
        "recordLapseLetter",
        "Record that the letter about a lapsed restriction was sent",
        Role.SUPERVISOR,
        "Restrictions",
        "LapseLetterRecorded",
        description=(
            "A restriction lapses when its review is overdue past [reviews] lapse_after_days; "
            "the Due list shows the letter to the customer (lapse_letter) until it is recorded. "
            "The lapse letter (the review was not done by its date, so the arrangements ended "
            "on the day it lapsed) is drawn at this moment, dated sent_on, and kept as sent "
            "(?about=lapse, and the customer's letters); the answer is the restriction with "
            "that letter under letter. Either both are recorded or neither is."
        ),
        body="LapseLetter",
        errors={
            404: "No restriction has this id.",
            409: "The restriction has not lapsed, or its letter is already recorded.",
            422: (
                "sent_on is missing, in the future or before the lapse, or method (or "
                "letter_method) is unknown, or the two differ. Nothing is recorded."
            ),
        },
    ),
    Operation(
        "get",
        "/due",
        "due",
        "What is due: letters, overdue notices, reviews, appeals",
        Role.SUPERVISOR,
        "Restrictions",
        "DueList",
        description=(
            "Overdue reviews carry how the daily job pressed them: escalated_to supervisors "
            "(every day it stays overdue), then admins ([reviews] admins_after_days, 30 by "
            "default); lapse_letter items are letters about restrictions that lapsed."
        ),
    ),
    Operation(
        "get",
        "/alerts",
        "listAlerts",
        "Excessive-contact alerts",
        Role.SUPERVISOR,
        "Alerts",
        "AlertList",
        description="Open alerts first, then the newest; at most 200.",
        parameters=(
            query(
                "status",
                "Only alerts with this status.",
                {"type": "string", "enum": [s.value for s in AlertStatus]},
            ),
            query("rule", "Only alerts of this contact rule.", {"type": "string"}),
            query("customer", "Only this customer's alerts (their reference).", {"type": "string"}),
        ),
        errors={
            404: "No customer has the reference given as customer.",
            422: "status is not open, dismissed, escalated or merged.",
        },
    ),
    Operation(
        "get",
        "/alerts/{alert_id}",
        "getAlert",
        "An alert with its evidence",
        Role.SUPERVISOR,
        "Alerts",
        "Alert",
        errors={404: "No alert has this id."},
    ),
    Operation(
        "post",
        "/alerts/{alert_id}/dismiss",
        "dismissAlert",
        "Dismiss an alert",
        Role.SUPERVISOR,
        "Alerts",
        "Alert",
        description="A person looked at the evidence, decided no action is needed, and says why.",
        body="DismissAlert",
        errors={
            404: "No alert has this id.",
            409: "The alert is not open: it was dismissed or escalated already.",
            422: "The reason is missing or too long.",
        },
    ),
    Operation(
        "post",
        "/alerts/{alert_id}/escalate",
        "escalateAlert",
        "Escalate an alert to a restriction",
        Role.SUPERVISOR,
        "Alerts",
        "Restriction",
        status=201,
        description=(
            "A person chooses the restriction: the body is the same as for recording one. "
            "The alert is closed as escalated."
        ),
        body="NewRestriction",
        errors={
            404: "No alert has this id.",
            409: "The alert is not open: it was dismissed or escalated already.",
            422: (
                "The caller is not a known customer (formal action is not possible, 11.4), or "
                "the restriction is invalid."
            ),
        },
    ),
    Operation(
        "get",
        "/calls/active",
        "listActiveCalls",
        "Live calls",
        Role.AGENT,
        "Calls",
        "LiveCallList",
        description=(
            "Calls in progress, with what the agent must know: connected to a person, or "
            "waiting to be put through (a call stays listed while it is handed between people)."
        ),
        parameters=(
            query(
                "mine",
                "1: only the calling agent's own calls and the contact centre's; else all.",
                {"type": "string", "examples": ["1"]},
            ),
        ),
    ),
    Operation(
        "post",
        "/calls/{call_sid}/warn",
        "warnCall",
        "Warn: play the scripted warning to both parties",
        Role.AGENT,
        "Calls",
        "AgentAction",
        description=(
            "The call goes on (policy 9.2). The press is on the record: pending until Twilio "
            "reports the announcement played (ok) or failed."
        ),
        body="WarnCall",
        body_required=False,
        errors={
            403: "The call is another member of staff's call.",
            404: "No call has this CallSid.",
            409: "The call has ended, is being ended, or is not connected to an agent yet.",
            502: "Twilio could not play the warning (the press is on the record as failed).",
        },
    ),
    Operation(
        "post",
        "/calls/{call_sid}/end",
        "endCall",
        "End: play the closing statement, then end the call",
        Role.AGENT,
        "Calls",
        "AgentAction",
        description=(
            "A call that was not warned first needs a reason (policy 9.2, 4.6). The press is on "
            "the record with its outcome."
        ),
        body="EndCall",
        body_required=False,
        errors={
            403: "The call is another member of staff's call.",
            404: "No call has this CallSid.",
            409: "The call has ended, is being ended, or is not connected to an agent yet.",
            422: "The reason is not text, or is missing for a call that was not warned first.",
            502: "Twilio could not end the call (the press is on the record as failed).",
        },
    ),
    Operation(
        "post",
        "/calls/{call_sid}/attach",
        "attachCall",
        "Attach an unidentified call to a customer",
        Role.SUPERVISOR,
        "Calls",
        "Attached",
        description=(
            "A call from a number not on file (or withheld) was the customer's: it becomes "
            "theirs, with its agents' incidents and voicemails; its contact counts move to the "
            "customer, the number's open alerts holding it close as merged, and the customer's "
            "alerts are evaluated over all their calls. With number: true the call's number is "
            "added to the customer and all its past calls move. On the audit trail."
        ),
        body="AttachCall",
        errors={
            404: "No call has this CallSid, or no customer has the reference.",
            409: "The call is already a customer's, or its number is another customer's.",
            422: (
                "customer or reason is missing, number is not true or false, or the number "
                "was withheld (number: true)."
            ),
        },
    ),
    Operation(
        "get",
        "/events/parked",
        "listParkedEvents",
        "Callbacks that could not be processed",
        Role.ADMIN,
        "Events",
        "ParkedEventList",
        description="A parked event failed several times; it waits here with its reason.",
    ),
    Operation(
        "post",
        "/events/{event_id}/retry",
        "retryEvent",
        "Retry a parked event",
        Role.ADMIN,
        "Events",
        "ParkedEvent",
        description=(
            "Put it back for processing, after the cause was fixed. The reason it was parked "
            "goes to the audit trail."
        ),
        errors={404: "No parked event has this id."},
    ),
    Operation(
        "get",
        "/voicemails",
        "listVoicemails",
        "Voicemails left for a SPOC",
        Role.AGENT,
        "Voicemails",
        "VoicemailList",
        description=(
            "Newest first. An agent sees the voicemails left for them as a customer's named "
            "contact (SPOC); a supervisor or an admin sees all."
        ),
        parameters=(
            query(
                "status",
                "Only voicemails with this status.",
                {"type": "string", "enum": ["new", "handled"]},
            ),
        ),
        errors={422: "status is not new or handled."},
    ),
    Operation(
        "get",
        "/voicemails/{voicemail_id}/audio",
        "voicemailAudio",
        "A voicemail's audio (MP3, streamed from Twilio)",
        Role.AGENT,
        "Voicemails",
        {"type": "string", "format": "binary"},
        description=(
            "Fetched from Twilio with the account's credentials while Twilio keeps its copy "
            "(it is deleted some days after the voicemail is handled)."
        ),
        errors={
            403: "The voicemail was left for another named contact.",
            404: "No voicemail has this id, or Twilio's copy of its recording was deleted.",
            502: "Twilio could not give the recording.",
        },
        media_type="audio/mpeg",
    ),
    Operation(
        "post",
        "/voicemails/{voicemail_id}/handled",
        "voicemailHandled",
        "Mark a voicemail handled",
        Role.AGENT,
        "Voicemails",
        "Voicemail",
        description="Recorded once, with who and when, on the audit trail.",
        errors={
            403: "The voicemail was left for another named contact.",
            404: "No voicemail has this id.",
            409: "The voicemail was already marked handled.",
        },
    ),
    Operation(
        "get",
        "/openapi.json",
        "getOpenAPIDocument",
        "This description of the API (OpenAPI 3.1)",
        Role.AGENT,
        "Documentation",
        {"type": "object", "description": "An OpenAPI 3.1 document."},
    ),
    Operation(
        "get",
        "/docs",
        "getAPIDocs",
        "This description of the API, as a page to read",
        Role.AGENT,
        "Documentation",
        {"type": "string"},
        description=(
            "Also opens without a token in a browser signed in to the staff pages as a "
            "supervisor or admin (a browser not signed in is sent to sign in)."
        ),
        media_type=HTML,
        session_role=Role.SUPERVISOR,
    ),
)


# --- schemas: generated from the shapes ------------------------------------------------------


def _shape(name: str) -> TypeAdapter[Any]:
    """The shape a component names: a request body (``shapes.bodies``), an answer
    (``shapes.answers``) or the body for a new restriction, made from the registered kinds."""
    if name == "NewRestriction":
        return bodies.new_restriction()
    model = getattr(bodies, name, None) or getattr(answers, name)
    return _adapter(model)


@functools.cache
def _adapter(model: type[Any]) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def body_shape(op: Operation) -> TypeAdapter[Any] | None:
    """What ``op`` takes, for checking a request (None: it takes no body)."""
    return _shape(op.body) if op.body else None


def answer_shape(op: Operation) -> TypeAdapter[Any] | None:
    """What ``op`` answers when it succeeds with JSON (None: a PDF, a page, this document)."""
    return _shape(op.response) if isinstance(op.response, str) else None


@functools.cache
def _by_path() -> dict[tuple[str, str], Operation]:
    return {(op.method.upper(), PREFIX + op.path): op for op in OPERATIONS}


def check_body(method: str, path: str, body: Mapping[str, Any]) -> None:
    """Invalid (422) naming the first field of ``body`` that does not fit the shape the
    operation at ``method path`` takes. A new restriction's body is checked as its kind's (an
    unknown kind is refused with the kinds there are)."""
    op = _by_path().get((method, path))
    if op is None or op.body is None:
        return
    if op.body == "NewRestriction":
        adapter = _adapter(bodies.kind_bodies()[kinds.get(body.get("kind")).name])
    else:
        adapter = _shape(op.body)
    wrong = shapes.check(adapter, json.dumps(body))
    if wrong is not None:
        raise Invalid(wrong)


def check_answer(method: str, path: str, status: int, answer: bytes) -> str | None:
    """What is wrong with a JSON answer for the operation's documented shape (None: nothing,
    or not a documented JSON success). Run on every answer under test."""
    op = _by_path().get((method, path))
    adapter = answer_shape(op) if op is not None and status == op.status else None
    return None if adapter is None else shapes.check(adapter, answer)


def schemas() -> dict[str, Schema]:
    """The document's schemas: every operation's body and answer, the models they refer to, and
    the error answer. Made once for the kinds and languages there are; read it, never change it."""
    return _schemas(bodies.declared())


@functools.lru_cache(maxsize=4)
def _schemas(declared: tuple[object, ...]) -> dict[str, Schema]:
    named = ["Error"]
    for op in OPERATIONS:
        named += [n for n in (op.body, op.response) if isinstance(n, str)]
    return shapes.components([(name, _shape(name)) for name in dict.fromkeys(named)])


def example_of(name: str, components: Mapping[str, Schema]) -> Any:
    """A component's first example (the models give every answer one)."""
    found = components.get(name, {}).get("examples") or [None]
    return found[0]


# --- responses ------------------------------------------------------------------------------

API_LIMIT = "MAX_API_BODY_BYTES"

ERRORS = {
    400: "Bad request: the path or the query holds NUL characters.",
    401: "No bearer token, or the token is not valid.",
    403: "The token's role may not do this.",
    404: "Not found.",
    409: "In conflict with the resource's current state.",
    413: f"The body is larger than the API takes ({API_LIMIT}: {{limit}} bytes).",
    415: "The body is not sent with Content-Type: application/json.",
    422: "A field is missing or invalid; the message says which.",
    502: "Twilio could not carry out the action.",
    503: (
        "The database is unavailable, or callguard is busy: try again shortly "
        "(after Retry-After seconds, when it is given)."
    ),
}
BAD_BODY = (
    "Bad request: the body is not JSON or not an object, is nested more than "
    f"{MAX_JSON_DEPTH} levels, or the path, query or body holds NUL characters."
)


def error_response(status: int, description: str) -> Schema:
    response: Schema = {
        "description": description,
        "content": {JSON: {"schema": ref("Error")}},
    }
    if status == 401:
        response["headers"] = {
            "WWW-Authenticate": {
                "description": 'Bearer realm="callguard"',
                "schema": {"type": "string"},
            }
        }
    if status == 503:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
                "schema": {"type": "integer", "minimum": 0},
            }
        }
    return response


def error_answers(op: Operation) -> dict[int, str]:
    """The operation's error answers and when they happen, in status order."""
    found = {400: BAD_BODY if op.body else ERRORS[400], 401: ERRORS[401], **op.errors}
    found[503] = ERRORS[503]
    if op.role is not Role.AGENT:
        needs = f"The token's role is below {op.role.value}."
        found[403] = f"{needs} {op.errors[403]}" if 403 in op.errors else needs
    if op.body is not None:
        limit = current_app.config[API_LIMIT] if has_app_context() else default(API_LIMIT)
        found.setdefault(413, ERRORS[413].format(limit=limit))
        found.setdefault(415, ERRORS[415])
    return dict(sorted(found.items()))


def success(op: Operation, components: Mapping[str, Schema]) -> Schema:
    """The answer when ``op`` succeeds: its shape, what it is, and an example of it."""
    done = "Created" if op.status == 201 else "OK"
    if not isinstance(op.response, str):
        return {"description": f"{done}.", "content": {op.media_type: {"schema": op.response}}}
    what = str(components.get(op.response, {}).get("description") or "")
    return {
        "description": f"{done}: {what[:1].lower()}{what[1:]}" if what else f"{done}.",
        "content": {
            op.media_type: {
                "schema": ref(op.response),
                "example": example_of(op.response, components),
            }
        },
    }


def operation_object(op: Operation, components: Mapping[str, Schema]) -> Schema:
    parameters = [
        {"name": name, "in": "path", "required": True, **PATH_PARAMETERS[name]}
        for name in re.findall(r"\{(\w+)\}", op.path)
    ]
    responses: dict[str, Schema] = {str(op.status): success(op, components)}
    for status, description in error_answers(op).items():
        responses[str(status)] = error_response(status, description)
    who = WHO[op.role]
    description = " ".join(filter(None, [op.description, f"Needs {who}."]))
    result: Schema = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": description,
        "tags": [op.tag],
        # OpenAPI 3.1 lets a non-OAuth2 requirement list the roles it needs.
        "security": [{BEARER: [op.role.value]}]
        + ([{PAGE_SESSION: [op.session_role.value]}] if op.session_role else []),
        "x-required-role": op.role.value,
        "responses": responses,
    }
    if parameters or op.parameters:
        result["parameters"] = [*parameters, *op.parameters]
    if op.body is not None:
        result["requestBody"] = {
            "required": op.body_required,
            "content": {JSON: {"schema": ref(op.body)}},
        }
    return result


def document(server_url: str = "/") -> Schema:
    """The whole OpenAPI 3.1 document, from the declarations above and the registered kinds."""
    components = schemas()
    paths: dict[str, dict[str, Schema]] = {}
    for op in OPERATIONS:
        paths.setdefault(PREFIX + op.path, {})[op.method] = operation_object(op, components)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "callguard API",
            "version": API_VERSION,
            "summary": "Customers, their restrictions, contact alerts and live calls.",
            "description": (
                "Send a staff member's token as `Authorization: Bearer <token>`. Roles are "
                "ordered agent < supervisor < admin: each operation names the least it needs. "
                'Every error is a 4xx or 5xx answer with the body `{"error": "<message>"}`.'
            ),
        },
        "servers": [{"url": server_url}],
        "tags": [{"name": tag} for tag in dict.fromkeys(op.tag for op in OPERATIONS)],
        "security": [{BEARER: []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "A staff member's API token. It works for 90 days (API_TOKEN_DAYS) and "
                        "stops working when it is rotated or revoked, when its owner signs out, "
                        "gets a new password or is disabled: then the API answers 401."
                    ),
                },
                PAGE_SESSION: {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "session",
                    "description": (
                        "The staff pages' signed-in session, as a browser has it after signing "
                        "in at /sign-in: only the operations that name it take it."
                    ),
                },
            },
            "schemas": components,
        },
    }


# --- the page for people --------------------------------------------------------------------


def _resolve(schema: Schema, components: Mapping[str, Schema]) -> Schema:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def describe_type(schema: Schema) -> str:
    """A schema's type in a few words: ``string (date)``, ``one of: open, dismissed``."""
    if "anyOf" in schema:  # X or null
        return " or ".join(describe_type(option) for option in schema["anyOf"])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return "one of: " + ", ".join(json.dumps(v) for v in schema["enum"])
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    types = schema.get("type", "any")
    words = " or ".join(types) if isinstance(types, list) else str(types)
    if words.startswith("array") and "items" in schema:
        words = f"array of {describe_type(schema['items'])}"
    elif words == "object" and schema.get("properties"):
        words = f"object {{{', '.join(schema['properties'])}}}"
    if "format" in schema:
        words += f" ({schema['format']})"
    limits = []
    if "maxLength" in schema:
        limits.append(f"at most {schema['maxLength']} characters")
    if "maxItems" in schema:
        limits.append(f"at most {schema['maxItems']} items")
    if "maxProperties" in schema:
        limits.append(f"at most {schema['maxProperties']} entries")
    if "minimum" in schema:
        limits.append(f"at least {schema['minimum']}")
    if "minItems" in schema:
        limits.append(f"at least {schema['minItems']} item{'s' if schema['minItems'] > 1 else ''}")
    return f"{words}, {', '.join(limits)}" if limits else words


def body_variants(schema: Schema, components: Mapping[str, Schema]) -> list[dict[str, Any]]:
    """A request body's fields, as rows for the page: one list per ``oneOf`` branch."""
    schema = _resolve(schema, components)
    branches = schema.get("oneOf") or [schema]
    variants = []
    for branch in branches:
        resolved = _resolve(branch, components)
        required = set(resolved.get("required", []))
        rows = [
            {
                "name": name,
                "type": describe_type(prop),
                "required": name in required,
                "description": prop.get("description", ""),
            }
            for name, prop in resolved.get("properties", {}).items()
        ]
        variants.append(
            {
                "title": resolved.get("title", "") if "oneOf" in schema else "",
                "description": resolved.get("description", ""),
                "fields": rows,
            }
        )
    return variants


def _answer_rows(op: Schema, components: Mapping[str, Schema]) -> dict[str, Any] | None:
    """The success answer's fields and its example, for the page (None: not JSON)."""
    status = next(s for s in op["responses"] if s.startswith("2"))
    content = op["responses"][status]["content"].get(JSON)
    if content is None:
        return None
    return {
        "status": status,
        "fields": body_variants(content["schema"], components)[0]["fields"],
        "example": json.dumps(content.get("example"), indent=2, ensure_ascii=False),
    }


def page_operations(doc: Schema) -> list[dict[str, Any]]:
    components = doc["components"]["schemas"]
    found = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            body = op.get("requestBody")
            found.append(
                {
                    "id": op["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "summary": op["summary"],
                    "description": op.get("description", ""),
                    "role": op["x-required-role"],
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "type": describe_type(p["schema"]),
                            "required": p.get("required", False),
                            "description": p.get("description", ""),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "body": body_variants(body["content"][JSON]["schema"], components)
                    if body
                    else None,
                    "body_required": bool(body and body.get("required")),
                    "responses": [
                        {"status": status, "description": r["description"]}
                        for status, r in op["responses"].items()
                    ],
                    "answer": _answer_rows(op, components),
                }
            )
    return found


# --- routes ---------------------------------------------------------------------------------


def _served_document() -> Schema:
    return document(str(current_app.config.get("PUBLIC_BASE_URL") or "/"))


@bp.get("/openapi.json")
@api_role(Role.AGENT)
def openapi_document() -> Response:
    return jsonify(_served_document())


@bp.get("/docs")
@token_or_page_role(Role.AGENT, Role.SUPERVISOR)  # a browser signed in as a supervisor opens it
def api_docs() -> str:
    doc = _served_document()
    return render_template(
        "api/docs.html", info=doc["info"], operations=page_operations(doc), roles=ROLES
    )
