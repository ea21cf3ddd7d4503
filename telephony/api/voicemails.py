"""JSON API: voicemails left for a SPOC. An agent sees the ones left for them (they are the
SPOC); supervisors see all. The audio is streamed through callguard from Twilio, with the
account's credentials, to signed-in staff only."""

from __future__ import annotations

from typing import Any

from flask import Response, g, jsonify, request, url_for

from restrictions import voicemails as domain
from restrictions.errors import NotFound
from restrictions.models import Role, Voicemail
from telephony import twilio_gateway
from telephony.api import bp, error
from telephony.auth import api_role, current_actor
from telephony.database import session
from telephony.twilio_gateway import GatewayError


def voicemail_json(v: Voicemail) -> dict[str, Any]:
    call = v.call
    return {
        "id": v.id,
        "call_sid": call.call_sid if call else None,
        "customer": (
            {"reference": v.customer.reference, "name": v.customer.name} if v.customer else None
        ),
        "from": call.from_number if call else None,
        "spoc": v.spoc,
        "recorded_at": v.created_at.isoformat(),
        "duration_seconds": v.duration_seconds,
        "transcription": v.transcription,
        "status": v.status,
        "handled_at": v.handled_at.isoformat() if v.handled_at else None,
        "handled_by": v.handled_by.name if v.handled_by else None,
        "audio_url": url_for("api.voicemail_audio", voicemail_id=v.id),
    }


def audio_response(v: Voicemail) -> Response:
    """The voicemail's mp3, streamed from Twilio (NotFound once Twilio's copy was deleted; 502
    when Twilio will not give it)."""
    if v.twilio_deleted_at is not None:
        raise NotFound(
            f"voicemail {v.id}'s recording was deleted from Twilio on "
            f"{v.twilio_deleted_at.date().isoformat()}"
        )
    recording_sid = v.recording_sid
    session().commit()  # the database is not needed while the audio streams
    try:
        audio = twilio_gateway.recording_audio(recording_sid)
    except GatewayError as exc:
        return error(str(exc), 502)
    response = Response(audio.chunks, mimetype="audio/mpeg", direct_passthrough=True)
    if audio.content_length and audio.content_length.isdigit():
        response.headers["Content-Length"] = audio.content_length
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/voicemails")
@api_role(Role.AGENT)
def list_voicemails() -> Any:
    found = domain.list_voicemails(session(), g.user, status=request.args.get("status"))
    return jsonify(voicemails=[voicemail_json(v) for v in found])


@bp.get("/voicemails/<id:voicemail_id>/audio")
@api_role(Role.AGENT)
def voicemail_audio(voicemail_id: int) -> Any:
    return audio_response(domain.get_voicemail(session(), voicemail_id, g.user))


@bp.post("/voicemails/<id:voicemail_id>/handled")
@api_role(Role.AGENT)
def voicemail_handled(voicemail_id: int) -> Any:
    sess = session()
    voicemail = domain.get_voicemail(sess, voicemail_id, g.user, for_decision=True)
    domain.mark_handled(sess, current_actor(), voicemail)
    sess.commit()
    return jsonify(voicemail_json(voicemail))
