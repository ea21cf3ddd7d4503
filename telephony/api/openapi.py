"""The JSON API as an OpenAPI 3.1 document, built from code each time it is asked for.

Every operation is declared once below, with the role its view demands (``@api_role``); the body
for a new restriction is generated from the registered kinds (``restrictions.kinds``), so a kind
registered at runtime is described without touching this module. ``GET /api/v1/openapi.json``
answers the document and ``GET /api/v1/docs`` a plain page for people, made from the same
document. tests/telephony/test_openapi.py fails when a route under /api/v1 is not described here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Response, current_app, has_app_context, jsonify, render_template

import prompts
from restrictions import adjustments, kinds, sharing
from restrictions.models import AlertStatus, Role
from restrictions.phone import MAX_NUMBER_LENGTH, MAX_NUMBERS
from restrictions.validation import (
    MAX_ADDRESS_LINE,
    MAX_ADDRESS_LINES,
    MAX_INT,
)
from telephony.api import bp
from telephony.auth import api_role, token_or_page_role
from telephony.inputs import MAX_JSON_DEPTH, SID
from telephony.limits import DEFAULTS as BODY_LIMITS

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

EFFECTS = {
    kinds.Effect.FLAG: "Calls take the default route; agents see the flag.",
    kinds.Effect.PERSON: "Calls are put through to the named person.",
    kinds.Effect.LIMITED: "Calls are taken only at the permitted times, up to a weekly allowance.",
    kinds.Effect.ENDS_CALL: (
        "The caller hears a message (emergency repairs are offered); then the call ends."
    ),
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def maybe(schema: Schema) -> Schema:
    """``schema`` or null (OpenAPI 3.1 is JSON Schema 2020-12: a list of types)."""
    kind = schema["type"]
    return {**schema, "type": [*(kind if isinstance(kind, list) else [kind]), "null"]}


def text(description: str, max_length: int | None = None) -> Schema:
    schema: Schema = {"type": "string", "description": description}
    if max_length is not None:
        schema["maxLength"] = max_length
    return schema


def obj(properties: Mapping[str, Schema], required: list[str], description: str = "") -> Schema:
    schema: Schema = {"type": "object", "properties": dict(properties), "required": required}
    if description:
        schema["description"] = description
    return schema


DATE = {"type": "string", "format": "date"}
# An object whose fields are not listed here (a restriction's body inside another): the fields
# a body of any kind can have, and then some (the body's size is bounded as well, 413).
MAX_BODY_FIELDS = 40
DATE_TIME = {"type": "string", "format": "date-time"}
ANY_OBJECT: Schema = {"type": "object", "additionalProperties": True}


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


def text_bool(description: str) -> Schema:
    return {"type": "boolean", "description": description}


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
    response: Schema
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
        ref("CallerDecision"),
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
        ref("Customer"),
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
        ref("CustomerRecord"),
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
        ref("Customer"),
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
        ref("Attached"),
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
        ref("Restriction"),
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
        ref("Restriction"),
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
        ref("Restriction"),
        errors={404: "No restriction has this id."},
    ),
    Operation(
        "post",
        "/restrictions/{restriction_id}/notice",
        "recordNotice",
        "Record that the written notice was sent (policy 10.2)",
        Role.SUPERVISOR,
        "Restrictions",
        ref("Restriction"),
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
        ref("Review"),
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
        ref("ReviewsDue"),
    ),
    Operation(
        "post",
        "/restrictions/{restriction_id}/appeals",
        "lodgeAppeal",
        "Lodge an appeal (policy 12.2)",
        Role.SUPERVISOR,
        "Appeals",
        ref("Appeal"),
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
        ref("SharingRecord"),
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
        ref("Appeal"),
        errors={404: "No appeal has this id."},
    ),
    Operation(
        "post",
        "/appeals/{appeal_id}/decision",
        "decideAppeal",
        "Decide an appeal",
        Role.SUPERVISOR,
        "Appeals",
        ref("Appeal"),
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
        ref("LapseLetterRecorded"),
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
        ref("DueList"),
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
        ref("AlertList"),
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
        ref("Alert"),
        errors={404: "No alert has this id."},
    ),
    Operation(
        "post",
        "/alerts/{alert_id}/dismiss",
        "dismissAlert",
        "Dismiss an alert",
        Role.SUPERVISOR,
        "Alerts",
        ref("Alert"),
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
        ref("Restriction"),
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
        ref("LiveCallList"),
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
        ref("AgentAction"),
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
        ref("AgentAction"),
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
        ref("Attached"),
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
        ref("ParkedEventList"),
        description="A parked event failed several times; it waits here with its reason.",
    ),
    Operation(
        "post",
        "/events/{event_id}/retry",
        "retryEvent",
        "Retry a parked event",
        Role.ADMIN,
        "Events",
        ref("ParkedEvent"),
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
        ref("VoicemailList"),
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
        ref("Voicemail"),
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


# --- schemas --------------------------------------------------------------------------------


def _adjustment_text(description: str, max_length: int) -> Schema:
    return maybe(text(description, max_length))


ADJUSTMENTS: Schema = {
    "type": "object",
    "description": (
        "Reasonable adjustments (policy 9.1-9.2), typed: any left out is unset, so "
        '{"slow_speech": true} is a whole answer. The customer\'s language is their language '
        "field. Health details go in sensitive_note: only supervisors see it (an agent's answer "
        "and the agent console never hold it) and the audit trail records only that it "
        "changed. On a change, sensitive_note left out stays as it is; null or an empty text "
        "removes it. Answers hold the fields that are set."
    ),
    "properties": {
        "slow_speech": {"type": "boolean", "description": "Prompts spoken slowly."},
        "large_print": {"type": "boolean", "description": "Large print for anything written."},
        "preferred_contact": maybe(
            {
                "type": "string",
                "enum": list(adjustments.PREFERRED_CONTACT),
                "description": "How they prefer to be contacted.",
            }
        ),
        "representative": maybe(
            {
                "type": "object",
                "description": "A representative or support worker, and how to reach them.",
                "properties": {
                    "name": text("Their name.", adjustments.MAX_TEXT),
                    "contact": text(
                        "How to reach them (a phone number, an email address).",
                        adjustments.MAX_TEXT,
                    ),
                    "role": {
                        "type": "string",
                        "enum": list(adjustments.REPRESENTATIVE_ROLES),
                        "default": "representative",
                    },
                },
                "required": ["name", "contact"],
                "additionalProperties": False,
            }
        ),
        "interpreter": _adjustment_text(
            "The language an interpreter speaks with them (Polish, British Sign Language …).",
            adjustments.MAX_INTERPRETER,
        ),
        "sensitive_note": _adjustment_text(
            "Supervisors only: health details and anything else agents must not read.",
            adjustments.MAX_SENSITIVE_NOTE,
        ),
    },
    "additionalProperties": False,
    "examples": [
        {"slow_speech": True},
        {
            "slow_speech": True,
            "large_print": True,
            "preferred_contact": "email",
            "representative": {
                "name": "Sam Jones",
                "contact": "07700 900123",
                "role": "support_worker",
            },
            "interpreter": "Polish",
        },
    ],
}
ADJUSTMENT_TEXTS: Schema = {
    "type": "array",
    "items": {"type": "string"},
    "description": "The adjustments in words, the language first (never the sensitive note).",
}


def _phone_numbers(description: str) -> Schema:
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_NUMBERS,
        "description": description,
        "items": {
            "type": "string",
            "maxLength": MAX_NUMBER_LENGTH,
            "description": "A phone number (E.164, or a UK number as dialled in the UK).",
        },
    }


def _postal_address(description: str) -> Schema:
    return {
        "type": "array",
        "maxItems": MAX_ADDRESS_LINES,
        "description": description,
        "items": {
            "type": "string",
            "maxLength": MAX_ADDRESS_LINE,
            "description": "One line of the address, as the envelope shows it.",
        },
        "examples": [["Flat 2", "14 Mill Lane", "Derby", "DE1 3AB"]],
    }


def _reason_translations() -> Schema:
    return {
        "type": "object",
        "description": (
            "The reason in the customer's language, for their letters (the reason itself is "
            "used in a language left out); each is marked in the letter as written by staff."
        ),
        "propertyNames": {"enum": list(prompts.languages())},
        "maxProperties": len(prompts.languages()),
        "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 5000},
        "examples": [{"cy-GB": "Gweiddi ar weithiwr atgyweirio ar 3 Rhagfyr (polisi 4.3)"}],
    }


def _language() -> Schema:
    return {
        "type": "string",
        "enum": list(prompts.languages()),
        "default": prompts.DEFAULT,
        "description": "What callguard speaks to them in.",
    }


def _restriction_common() -> dict[str, Schema]:
    return {
        "reason": text("Why: the behaviour and the policy section.", 5000),
        "reason_translations": _reason_translations(),
        "decided_on": {**DATE, "description": "The decision's date (today if left out)."},
        "notice_sent_on": {
            **DATE,
            "description": "When the customer was sent notice: it applies from then.",
        },
        "notice_method": {"type": "string", "enum": ["post", "email", "hand", "portal"]},
        "apply_now": {
            "type": "boolean",
            "description": "Apply at once, for danger (4.6); needs urgent_reason.",
        },
        "urgent_reason": text("Why it cannot wait for the notice.", 5000),
    }


def component_name(prefix: str, name: str) -> str:
    """A component key (letters, digits, ``.``, ``-``, ``_``) for a kind's name."""
    return f"{prefix}.{re.sub(r'[^A-Za-z0-9._-]', '_', name)}"


def restriction_bodies() -> dict[str, Schema]:
    """``NewRestriction`` and one schema per registered kind, from the kinds' declarations."""
    schemas: dict[str, Schema] = {}
    mapping: dict[str, str] = {}
    for kind in kinds.all_kinds():
        properties: dict[str, Schema] = {
            "kind": {"const": kind.name, "description": kind.label},
            **_restriction_common(),
        }
        required = ["kind", "reason"]
        for f in kind.fields:
            properties[f.name] = f.schema()
            if f.required:
                required.append(f.name)
        schema: Schema = {
            "type": "object",
            "title": kind.label,
            "description": " ".join(filter(None, [f"{kind.label}.", EFFECTS.get(kind.effect)])),
            "properties": properties,
            "required": required,
        }
        if kind.example:
            schema["examples"] = [{"kind": kind.name, **kind.example}]
        name = component_name("NewRestriction", kind.name)
        schemas[name] = schema
        mapping[kind.name] = ref(name)["$ref"]
    description = "A decision under policy 10.1: the kind, the reason and the kind's own fields."
    if mapping:
        schemas["NewRestriction"] = {
            "description": description,
            "oneOf": [{"$ref": target} for target in mapping.values()],
            "discriminator": {"propertyName": "kind", "mapping": mapping},
        }
    else:  # no kind is registered: nothing can be recorded, but the document stays valid
        schemas["NewRestriction"] = obj(
            {"kind": {"type": "string"}, **_restriction_common()}, ["kind", "reason"], description
        )
    return schemas


def schemas() -> dict[str, Schema]:
    appeal_out = obj(
        {
            "id": {"type": "integer"},
            "restriction_id": {"type": "integer"},
            "lodged_on": DATE,
            "grounds": {"type": "string"},
            "late_reason": maybe({"type": "string"}),
            "due_on": DATE,
            "outcome": maybe(text("upheld, overturned or varied; null while undecided.")),
            "notes": maybe({"type": "string"}),
            "decided_on": maybe(dict(DATE)),
            "decided_by": maybe({"type": "string"}),
            "successor": maybe({"type": "integer"}),
            "override_reason": maybe(
                text("Why an admin who took part in the restriction decided it all the same.")
            ),
        },
        ["id", "restriction_id", "lodged_on", "grounds", "due_on", "outcome"],
    )
    review_out = obj(
        {
            "id": {"type": "integer"},
            "restriction_id": {"type": "integer"},
            "reviewed_on": DATE,
            "outcome": {"type": "string"},
            "notes": {"type": "string"},
            "next_review_on": maybe(dict(DATE)),
            "reviewer": {"type": "string"},
            "successor": maybe({"type": "integer"}),
            "restriction": ref("Restriction"),
        },
        ["id", "restriction_id", "reviewed_on", "outcome", "notes", "restriction"],
    )
    due_out = obj(
        {
            "what": {
                "type": "string",
                "enum": [
                    "letter",
                    "notice_overdue",
                    "review_due",
                    "review_overdue",
                    "appeal",
                    "lapse_letter",
                ],
            },
            "due_on": maybe(dict(DATE)),
            "days_overdue": {"type": "integer"},
            "restriction_id": {"type": "integer"},
            "kind": {"type": "string"},
            "customer": maybe({"type": "string"}),
            "customer_name": maybe({"type": "string"}),
            "appeal_id": maybe({"type": "integer"}),
            "escalated_to": maybe(
                {
                    "type": "string",
                    "enum": ["supervisors", "admins", None],
                    "description": "An overdue review: on whom the daily job last pressed it.",
                }
            ),
            "escalated_on": maybe({**DATE, "description": "The latest day it was pressed."}),
            "escalations": {
                "type": "integer",
                "description": "On how many days this overdue review was pressed.",
            },
        },
        ["what", "due_on", "days_overdue", "restriction_id", "kind"],
    )
    restriction_out = obj(
        {
            "id": {"type": "integer"},
            "customer": maybe(text("The customer's reference.")),
            "kind": text("The kind's name."),
            "reason": {"type": "string"},
            "reason_translations": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "The reason in other languages, by language tag (may be empty).",
            },
            "details": {
                **ANY_OBJECT,
                "description": "The kind's own fields (also copied to the top level).",
            },
            "active": {"type": "boolean"},
            "decided_at": DATE_TIME,
            "decided_by": maybe(text("The staff member who decided.")),
            "notice_sent_on": maybe(dict(DATE)),
            "review_due_on": maybe(dict(DATE)),
            "state": {"type": "string", "enum": ["awaiting_notice", "active", "ended"]},
            "decided_on": maybe(dict(DATE)),
            "notice_method": maybe({"type": "string"}),
            "apply_now": {"type": "boolean"},
            "urgent_reason": maybe({"type": "string"}),
            "notice_due_on": maybe(dict(DATE)),
            "takes_effect_on": maybe(dict(DATE)),
            "last_reviewed_on": maybe(dict(DATE)),
            "appeal_last_day": maybe(
                {
                    **DATE,
                    "description": (
                        "The last day to appeal (12.2): 20 working days after the latest letter "
                        "that gave the right of appeal; null while nothing was sent, or ended."
                    ),
                }
            ),
            "appeal_counted_from": maybe(
                obj(
                    {
                        "letter": {
                            "type": "string",
                            "enum": ["decision", "urgent_notice", "review"],
                            "description": "The decision letter, or a review outcome letter.",
                        },
                        "dated": DATE,
                    },
                    ["letter", "dated"],
                    "The letter the appeal's last day counts from.",
                )
            ),
            "replaces": maybe({"type": "integer"}),
            "appeals": {"type": "array", "items": ref("Appeal")},
            "sharing": {
                "type": "array",
                "items": ref("SharingRecord"),
                "description": "Information shared with other agencies (policy 10.1).",
            },
            "warnings": {
                "type": "array",
                "items": {"type": "string"},
                "description": "On creation: which restriction overrides this one on calls.",
            },
            "ended_at": maybe(dict(DATE_TIME)),
            "ended_by": maybe({"type": "string"}),
            "end_reason": maybe({"type": "string"}),
            "in_force": text_bool(
                "Whether it routes calls now: active, or varied while its successor awaits its "
                "notice (the old terms apply until the new ones take effect)."
            ),
            "lapsed_on": maybe(
                {**DATE, "description": "The day it lapsed, its review overdue ([reviews])."}
            ),
            "lapse_letter_sent_on": maybe(
                {**DATE, "description": "When the letter about its lapse was sent."}
            ),
        },
        [
            "id",
            "customer",
            "kind",
            "reason",
            "details",
            "active",
            "decided_at",
            "decided_by",
            "notice_sent_on",
            "review_due_on",
            "state",
            "appeals",
            "ended_at",
            "ended_by",
            "end_reason",
        ],
        "A restriction. The kind's own fields also appear at the top level, as in details.",
    )
    restriction_out["additionalProperties"] = True
    customer_out = obj(
        {
            "reference": {"type": "string"},
            "name": {"type": "string"},
            "language": {"type": "string"},
            "adjustments": ADJUSTMENTS,
            "adjustment_texts": ADJUSTMENT_TEXTS,
            "phone_numbers": {"type": "array", "items": {"type": "string"}},
            "postal_address": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The lines of their postal address, for letters (empty: unknown).",
            },
            "active_restrictions": {"type": "array", "items": ref("Restriction")},
        },
        [
            "reference",
            "name",
            "language",
            "adjustments",
            "phone_numbers",
            "postal_address",
            "active_restrictions",
        ],
    )
    record_out = {
        "allOf": [
            ref("Customer"),
            obj(
                {
                    "recent_calls": {"type": "array", "items": ref("Call")},
                    "agent_actions": {"type": "array", "items": ref("AgentAction")},
                    "audit": {"type": "array", "items": ref("AuditEntry")},
                    "letters": {
                        "type": "array",
                        "items": ref("SentLetter"),
                        "description": "Every letter sent to them, newest first.",
                    },
                },
                ["recent_calls", "agent_actions", "audit", "letters"],
            ),
        ],
        "description": (
            "A customer with their recent calls, agent actions, audit trail and letters sent."
        ),
    }
    sent_letter_out = obj(
        {
            "id": {"type": "integer"},
            "kind": {
                "type": "string",
                "enum": ["decision", "urgent_notice", "review", "appeal", "end", "lapse"],
            },
            "restriction_id": {"type": "integer"},
            "review_id": maybe({"type": "integer"}),
            "appeal_id": maybe({"type": "integer"}),
            "title": {"type": "string"},
            "language": {"type": "string"},
            "letter_on": {**DATE, "description": "The date the letter bears."},
            "sent_on": DATE,
            "method": {"type": "string", "enum": ["post", "email", "hand", "portal"]},
            "template_version": text("What drew it: the letter templates, words and fpdf2."),
            "sha256": text("The SHA-256 of the PDF, in hex."),
            "recorded_by": {"type": "string"},
            "recorded_at": DATE_TIME,
            "download": text("Where its PDF is, as it was sent (GET, supervisors)."),
        },
        [
            "id",
            "kind",
            "restriction_id",
            "language",
            "letter_on",
            "sent_on",
            "method",
            "template_version",
            "sha256",
            "recorded_by",
            "recorded_at",
            "download",
        ],
        "A letter as it was sent, kept unchanged.",
    )
    call_out = obj(
        {
            "call_sid": {"type": "string"},
            "from": {"type": "string", "description": "As Twilio gave it."},
            "to": {"type": "string"},
            "route": {"type": "string"},
            "destination": maybe({"type": "string"}),
            "status": {"type": "string"},
            "started_at": maybe(dict(DATE_TIME)),
            "answered_at": maybe(dict(DATE_TIME)),
            "ended_at": maybe(dict(DATE_TIME)),
            "duration_seconds": maybe({"type": "integer"}),
            "emergency_selected": {"type": "boolean"},
            "flags": {"type": "array", "items": {"type": "string"}},
        },
        ["call_sid", "from", "to", "route", "status", "flags"],
    )
    action_out = obj(
        {
            "id": {"type": "integer"},
            "kind": {"type": "string", "enum": ["warn", "end"]},
            "call_sid": maybe({"type": "string"}),
            "agent": maybe({"type": "string"}),
            "reason": maybe({"type": "string"}),
            "outcome": {
                **text(
                    "A Warn is pending until Twilio reports the announcement played (ok) or "
                    "failed; an End is ok once the caller is off the line."
                ),
                "enum": ["pending", "ok", "failed"],
            },
            "error": maybe(text("What Twilio said, when the outcome is failed.")),
            "detail": maybe(
                text("What happened beyond the outcome (the caller had already left, say).")
            ),
            "at": maybe(dict(DATE_TIME)),
        },
        ["id", "kind", "call_sid", "agent", "reason", "outcome", "error", "detail", "at"],
        "An agent's Warn or End press, with its outcome.",
    )
    audit_out = obj(
        {
            "at": maybe(dict(DATE_TIME)),
            "actor": {"type": "string"},
            "action": {"type": "string"},
            "entity": {"type": "string"},
            "entity_id": {"type": "integer"},
            "before": maybe(dict(ANY_OBJECT)),
            "after": maybe(dict(ANY_OBJECT)),
            "note": maybe({"type": "string"}),
        },
        ["at", "actor", "action", "entity", "entity_id", "before", "after", "note"],
    )
    alert_out = obj(
        {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": [s.value for s in AlertStatus]},
            "rule": text("The contact rule's name."),
            "limit": {**ANY_OBJECT, "description": "The contact rule as it was."},
            "customer": maybe(text("The customer's reference, if the caller is one.")),
            "number": maybe({"type": "string"}),
            "opened_at": DATE_TIME,
            "evidence": {**ANY_OBJECT, "description": "The calls that broke the rule."},
            "closed_at": maybe(dict(DATE_TIME)),
            "closed_by": maybe({"type": "string"}),
            "reason": maybe({"type": "string"}),
            "restriction_id": maybe({"type": "integer"}),
        },
        [
            "id",
            "status",
            "rule",
            "limit",
            "customer",
            "number",
            "opened_at",
            "evidence",
            "closed_at",
            "closed_by",
            "reason",
            "restriction_id",
        ],
        "Excessive contact (policy section 6): evidence for a person to decide on.",
    )
    live_call = obj(
        {
            "call_sid": {"type": "string"},
            "from": {"type": "string"},
            "caller_name": maybe({"type": "string"}),
            "customer": maybe(
                obj(
                    {
                        "reference": {"type": "string"},
                        "name": {"type": "string"},
                        "language": {"type": "string"},
                        "adjustments": ADJUSTMENTS,
                        "adjustment_texts": ADJUSTMENT_TEXTS,
                    },
                    ["reference", "name", "language", "adjustments", "adjustment_texts"],
                )
            ),
            "identified": {"type": "boolean"},
            "flags": {"type": "array", "items": {"type": "string"}},
            "flag_texts": {"type": "array", "items": text("A flag in words.")},
            "restrictions": {
                "type": "array",
                "items": {
                    **obj(
                        {
                            "kind": {"type": "string"},
                            "label": {"type": "string"},
                            "since": DATE,
                        },
                        ["kind", "label", "since"],
                        "An active restriction, with the kind's own fields.",
                    ),
                    "additionalProperties": True,
                },
            },
            "route": {"type": "string"},
            "agent": maybe({"type": "string"}),
            "state": {
                **text(
                    "connected: a person is with the caller (Warn and End work); waiting: the "
                    "caller is being put through."
                ),
                "enum": ["connected", "waiting"],
            },
            "since": maybe(
                {**DATE_TIME, "description": "When a person and the caller were put together."}
            ),
            "started": DATE_TIME,
            "warned": {
                "type": "boolean",
                "description": "A Warn on this call has played (End then needs no reason).",
            },
            "warning": maybe(
                {
                    **text(
                        "The latest Warn: pending until Twilio says it played (ok) or could "
                        "not (failed)."
                    ),
                    "enum": ["pending", "ok", "failed"],
                }
            ),
        },
        [
            "call_sid",
            "from",
            "customer",
            "identified",
            "flags",
            "flag_texts",
            "state",
            "started",
            "warned",
            "warning",
        ],
        "A live call, with what the agent must know about it.",
    )
    event_out = obj(
        {
            "id": {"type": "integer"},
            "source": {"type": "string"},
            "call_sid": maybe({"type": "string"}),
            "event": {"type": "string"},
            "sequence_number": {"type": "integer"},
            "received_at": DATE_TIME,
            "attempts": {"type": "integer"},
            "reason": maybe(text("Why it was parked (null once it is put back).")),
        },
        ["id", "source", "call_sid", "event", "sequence_number", "received_at", "attempts"],
    )
    voicemail_out = obj(
        {
            "id": {"type": "integer"},
            "call_sid": maybe({"type": "string"}),
            "customer": maybe(
                obj(
                    {"reference": {"type": "string"}, "name": {"type": "string"}},
                    ["reference", "name"],
                    "The customer who called, when the number is theirs.",
                )
            ),
            "from": maybe(text("The caller's number, as Twilio gave it.")),
            "spoc": maybe(text("The named contact: client:<user name> or a phone number.")),
            "recorded_at": DATE_TIME,
            "duration_seconds": {"type": "integer"},
            "transcription": maybe(text("Twilio's transcript, when transcription is on.")),
            "status": {"type": "string", "enum": ["new", "handled"]},
            "handled_at": maybe(dict(DATE_TIME)),
            "handled_by": maybe({"type": "string"}),
            "audio_url": text("Where its audio is fetched through callguard."),
        },
        [
            "id",
            "call_sid",
            "customer",
            "from",
            "spoc",
            "recorded_at",
            "duration_seconds",
            "transcription",
            "status",
            "audio_url",
        ],
        "A message a customer left for their named contact (SPOC).",
    )
    return {
        "Error": obj(
            {"error": text("What is wrong, for a person.")}, ["error"], "Every error answer."
        ),
        "NewCustomer": obj(
            {
                "reference": text("The landlord's own reference.", 64),
                "name": text("Their name.", 200),
                "phone_numbers": _phone_numbers("The numbers they call from."),
                "language": _language(),
                "adjustments": ADJUSTMENTS,
                "postal_address": _postal_address(
                    "Their postal address, a line each, for the letters' window envelope."
                ),
            },
            ["reference", "name", "phone_numbers"],
        ),
        "CustomerChanges": obj(
            {
                "name": text("Their name.", 200),
                "phone_numbers": _phone_numbers("All their numbers (replaces the list)."),
                "language": _language(),
                "adjustments": {**ADJUSTMENTS, "description": "Replaces the adjustments."},
                "postal_address": _postal_address(
                    "Their postal address, a line each (replaces it; [] removes it)."
                ),
                "attach_past_calls": text_bool(
                    "true: the past calls from their numbers (a number added now, or earlier) "
                    "that are not yet anyone's become theirs, with their counts and alerts, as "
                    "POST /customers/{reference}/numbers does."
                ),
                "reason": text("Why, for the audit trail (with attach_past_calls).", 5000),
            },
            [],
            "The fields to change; a field left out (or null) stays as it is.",
        ),
        "AttachCall": obj(
            {
                "customer": text("The reference of the customer whose call it was.", 64),
                "reason": text("How it is known to be theirs (the audit trail says).", 5000),
                "number": {
                    "type": "boolean",
                    "default": False,
                    "description": (
                        "true: the call's number is theirs as well (added to their record), "
                        "and so is every past call from it that is not yet anyone's."
                    ),
                },
            },
            ["customer", "reason"],
        ),
        "AttachNumber": obj(
            {
                "number": text(
                    "A phone number (E.164, or a UK number as dialled in the UK).",
                    MAX_NUMBER_LENGTH,
                ),
                "reason": text("Why, for the audit trail.", 5000),
            },
            ["number"],
        ),
        "Attached": obj(
            {
                "customer": text("The customer's reference."),
                "number_added": maybe(text("The number added to their record, if one was.")),
                "calls": {
                    "type": "array",
                    "items": ref("Call"),
                    "description": "The calls that became theirs.",
                },
                "alerts_merged": {
                    "type": "array",
                    "items": {"type": "integer"},
                    "description": "The number's open alerts, closed as merged.",
                },
                "alerts_opened": {
                    "type": "array",
                    "items": {"type": "integer"},
                    "description": "The customer's alerts their calls now call for.",
                },
            },
            ["customer", "number_added", "calls", "alerts_merged", "alerts_opened"],
            "What attaching did: counts and alerts moved with the calls.",
        ),
        **restriction_bodies(),
        "EndRestriction": obj(
            {
                "reason": text("Why it ends (said in the end letter).", 5000),
                "letter_method": {
                    "type": "string",
                    "enum": ["post", "email", "hand", "portal"],
                    "description": "How the letter goes to the customer; post if left out.",
                },
            },
            ["reason"],
        ),
        "NewSharing": obj(
            {
                "shared_with": text(
                    "The agency (and person) it was shared with.", sharing.MAX_SHARED_WITH
                ),
                "shared_on": {**DATE, "description": "The day it was shared (not in the future)."},
                "purpose": text("Why it was shared.", sharing.MAX_PURPOSE),
                "lawful_basis": {
                    "type": "string",
                    "enum": list(sharing.LAWFUL_BASES),
                    "description": "The lawful basis, UK GDPR Article 6(1).",
                },
            },
            ["shared_with", "shared_on", "purpose", "lawful_basis"],
            "Information about a restriction shared with another agency (policy 10.1).",
        ),
        "SharingRecord": obj(
            {
                "id": {"type": "integer"},
                "restriction_id": {"type": "integer"},
                "shared_with": {"type": "string"},
                "shared_on": DATE,
                "purpose": {"type": "string"},
                "lawful_basis": {"type": "string", "enum": list(sharing.LAWFUL_BASES)},
                "recorded_by": {"type": "string"},
                "recorded_at": maybe(dict(DATE_TIME)),
            },
            ["id", "restriction_id", "shared_with", "shared_on", "purpose", "lawful_basis"],
            "Information shared with another agency, as recorded.",
        ),
        "NewAppeal": obj(
            {
                "lodged_on": {**DATE, "description": "When it was lodged; today if left out."},
                "grounds": text("The customer's grounds.", 10000),
                "late_reason": text("Why a late appeal is accepted (recorded).", 5000),
            },
            ["grounds"],
        ),
        "Notice": obj(
            {
                "sent_on": {**DATE, "description": "When the notice was sent."},
                "method": {"type": "string", "enum": ["post", "email", "hand", "portal"]},
            },
            ["sent_on", "method"],
        ),
        "ReviewBody": obj(
            {
                "outcome": {"type": "string", "enum": ["continue", "vary", "end"]},
                "notes": text("What the review found.", 5000),
                "next_review_on": {**DATE, "description": "For continue: at most 12 months."},
                "successor": {
                    **ANY_OBJECT,
                    "maxProperties": MAX_BODY_FIELDS,
                    "description": "For vary: a new restriction's body.",
                },
                "letter_method": {
                    "type": "string",
                    "enum": ["post", "email", "hand", "portal"],
                    "description": "How the letter goes to the customer; post if left out.",
                },
            },
            ["outcome", "notes"],
        ),
        "AppealDecision": obj(
            {
                "outcome": {"type": "string", "enum": ["upheld", "overturned", "varied"]},
                "notes": text("Why.", 10000),
                "successor": {
                    **ANY_OBJECT,
                    "maxProperties": MAX_BODY_FIELDS,
                    "description": "For varied: a new restriction's body.",
                },
                "override_reason": text(
                    "Required of an admin who took part in the restriction (decided, reviewed, "
                    "varied or continued it): why they decide the appeal all the same. Recorded "
                    "on the appeal and the audit trail; ignored from anyone else.",
                    5000,
                ),
                "letter_method": {
                    "type": "string",
                    "enum": ["post", "email", "hand", "portal"],
                    "description": "How the letter goes to the customer; post if left out.",
                },
            },
            ["outcome", "notes"],
        ),
        "LapseLetter": obj(
            {
                "sent_on": {
                    **DATE,
                    "description": "When the letter about the lapse was sent (from the lapse "
                    "to today).",
                },
                "method": {
                    "type": "string",
                    "enum": ["post", "email", "hand", "portal"],
                    "description": "How the letter went to the customer; post if left out.",
                },
                "letter_method": {
                    "type": "string",
                    "enum": ["post", "email", "hand", "portal"],
                    "description": "Another name for method (as the other steps call it); "
                    "if both are given they must agree.",
                },
            },
            ["sent_on"],
        ),
        "LapseLetterRecorded": {
            "allOf": [
                ref("Restriction"),
                obj({"letter": ref("SentLetter")}, ["letter"]),
            ],
            "description": "The restriction, with its lapse letter as kept.",
        },
        "Appeal": appeal_out,
        "Review": review_out,
        "DueItem": due_out,
        "DueList": obj({"due": {"type": "array", "items": ref("DueItem")}}, ["due"]),
        "ReviewsDue": obj({"reviews": {"type": "array", "items": ref("DueItem")}}, ["reviews"]),
        "DismissAlert": obj({"reason": text("Why no action is needed.", 5000)}, ["reason"]),
        "WarnCall": {
            "type": "object",
            "maxProperties": MAX_BODY_FIELDS,
            "description": "Nothing is needed; a body, if sent, must be a JSON object.",
        },
        "EndCall": obj({"reason": text("Why; needed unless the call was warned first.", 2000)}, []),
        "Customer": customer_out,
        "CustomerRecord": record_out,
        "Restriction": restriction_out,
        "SentLetter": sent_letter_out,
        "Call": call_out,
        "AgentAction": action_out,
        "AuditEntry": audit_out,
        "Alert": alert_out,
        "AlertList": obj({"alerts": {"type": "array", "items": ref("Alert")}}, ["alerts"]),
        "LiveCall": live_call,
        "CallerDecision": obj(
            {
                "number": maybe({"type": "string"}),
                "identified": {"type": "boolean"},
                "customer": maybe(
                    obj(
                        {"reference": {"type": "string"}, "name": {"type": "string"}},
                        ["reference", "name"],
                    )
                ),
                "route": text("The route's name: default, spoc, written_only, outside_window …"),
                "destination": maybe(text("Where the call goes (dial:…, taskrouter:WW…, …).")),
                "ends_call": {"type": "boolean"},
                "message": maybe(text("The message's key when the call ends.")),
                "words": maybe(text("What the caller would hear, in their language.")),
                "language": {"type": "string"},
                "slow_speech": {"type": "boolean"},
                "restrictions": {
                    "type": "array",
                    "items": obj(
                        {"kind": {"type": "string"}, "label": {"type": "string"}},
                        ["kind", "label"],
                    ),
                },
                "flags": {"type": "array", "items": {"type": "string"}},
                "flag_texts": {"type": "array", "items": {"type": "string"}},
                "twiml_url": text("callguard's inbound webhook: hand the call to it whole."),
                "fallback": text_bool("The decision could not be made in time: the default route."),
                "task_attributes": maybe(
                    {**ANY_OBJECT, "description": "The task's attributes for a taskrouter: route."}
                ),
            },
            [
                "number",
                "identified",
                "customer",
                "route",
                "destination",
                "ends_call",
                "message",
                "words",
                "language",
                "slow_speech",
                "restrictions",
                "flags",
                "flag_texts",
                "twiml_url",
                "fallback",
                "task_attributes",
            ],
            "callguard's decision for a caller.",
        ),
        "LiveCallList": obj({"calls": {"type": "array", "items": ref("LiveCall")}}, ["calls"]),
        "Voicemail": voicemail_out,
        "VoicemailList": obj(
            {"voicemails": {"type": "array", "items": ref("Voicemail")}}, ["voicemails"]
        ),
        "ParkedEvent": event_out,
        "ParkedEventList": obj(
            {"events": {"type": "array", "items": ref("ParkedEvent")}}, ["events"]
        ),
    }


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
        limit = current_app.config.get(API_LIMIT) if has_app_context() else None
        found.setdefault(413, ERRORS[413].format(limit=limit or BODY_LIMITS[API_LIMIT]))
        found.setdefault(415, ERRORS[415])
    return dict(sorted(found.items()))


def operation_object(op: Operation) -> Schema:
    parameters = [
        {"name": name, "in": "path", "required": True, **PATH_PARAMETERS[name]}
        for name in re.findall(r"\{(\w+)\}", op.path)
    ]
    responses: dict[str, Schema] = {
        str(op.status): {
            "description": "Created." if op.status == 201 else "OK.",
            "content": {op.media_type: {"schema": op.response}},
        }
    }
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
    paths: dict[str, dict[str, Schema]] = {}
    for op in OPERATIONS:
        paths.setdefault(PREFIX + op.path, {})[op.method] = operation_object(op)
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
            "schemas": schemas(),
        },
    }


# --- the page for people --------------------------------------------------------------------


def _resolve(schema: Schema, components: Mapping[str, Schema]) -> Schema:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def describe_type(schema: Schema) -> str:
    """A schema's type in a few words: ``string (date)``, ``one of: open, dismissed``."""
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
