"""A SPOC's voicemail reaches the SPOC: the ``<Record>`` asks Twilio for its recording status
callback, the callback (signed, with Twilio's own fields, sent twice) stores one voicemail, the
SPOC (and supervisors, nobody else) find it in the API and on the Voicemails page, play it through
callguard, mark it handled once; the daily job then deletes Twilio's copy after the retention,
once. The caller is told their message was recorded only when it was."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from restrictions import events
from restrictions.models import AuditEntry, Voicemail
from telephony.config import SETTINGS
from telephony.database import database
from telephony.redis_store import redis_client
from tests.calls import parse, spoken
from tests.fake_twilio import ACCOUNT_SID, FakeTwilio
from tests.pages import signed_in

CUSTOMER = "+447400100001"
SPOC_NAME = "jo.bloggs"
SPOC_LEG = "CA" + "f" * 32
RECORDING = "RE" + "0123456789abcdef" * 2
TWILIO_RECORDING_URL = (
    f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING}"
)
MEDIA_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING}.mp3"
DELETE_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING}.json"
PUBLIC = "https://calls.example.org"
LEFT_AT = datetime(2026, 6, 2, 9, 30, tzinfo=UTC)
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@dataclass
class SpocCall:
    call_sid: str
    record: ElementTree.Element  # the <Record> the caller was given

    @property
    def recording_callback(self) -> str:
        """The recordingStatusCallback as a path Twilio posts to (what it signs)."""
        url = urlsplit(self.record.get("recordingStatusCallback") or "")
        assert f"{url.scheme}://{url.netloc}" == PUBLIC
        return f"{url.path}?{url.query}"


def recording_params(call_sid: str, **overrides: str) -> dict[str, str]:
    """A recording status callback as Twilio sends it for a <Record> verb."""
    params = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": call_sid,
        "RecordingSid": RECORDING,
        "RecordingUrl": TWILIO_RECORDING_URL,
        "RecordingStatus": "completed",
        "RecordingDuration": "14",
        "RecordingChannels": "1",
        "RecordingStartTime": "Tue, 02 Jun 2026 09:31:00 +0000",
        "RecordingSource": "RecordVerb",
        "ErrorCode": "0",
    }
    params.update(overrides)
    return params


@pytest.fixture
def spoc(make_staff: Callable[..., Any]) -> Any:
    return make_staff("agent", SPOC_NAME, password="jo-bloggs-pass-2026")


@pytest.fixture
def spoc_call(
    app: Flask,
    twilio: Any,
    run_jobs: Callable[[], int],
    fake_twilio: FakeTwilio,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    spoc: Any,
) -> SpocCall:
    """A customer whose SPOC is jo.bloggs calls; jo.bloggs does not answer; the caller is
    moved on to the voicemail (a call update from the worker)."""
    restrict(make_customer(), kind="spoc", spoc=SPOC_NAME)
    params = twilio.call_params(CUSTOMER)
    with time_machine.travel(LEFT_AT, tick=False):
        twilio.post("/twilio/voice/incoming", params)
        run_jobs()
        path = f"/twilio/voice/participant?call_sid={params['CallSid']}&kind=spoc"
        unanswered = {"CallSid": SPOC_LEG, "CallStatus": "no-answer", "AccountSid": ACCOUNT_SID}
        assert twilio.post(path, unanswered).status_code == 204
        run_jobs()
    (update,) = fake_twilio.posts(f"/Calls/{params['CallSid']}.json")
    moved = ElementTree.fromstring(update.param("Twiml") or "")
    record = moved.find("Record")
    assert record is not None, "the caller was not offered the voicemail"
    return SpocCall(params["CallSid"], record)


def left_message(twilio: Any, call: SpocCall, **overrides: str) -> Any:
    with time_machine.travel(LEFT_AT + timedelta(minutes=1), tick=False):
        return twilio.post(call.recording_callback, recording_params(call.call_sid, **overrides))


def stored(app: Flask) -> list[Voicemail]:
    with database(app).sessions() as sess:
        return list(sess.scalars(select(Voicemail).order_by(Voicemail.id)))


# --- the <Record> and its callbacks --------------------------------------------------------------


def test_the_spocs_caller_is_recorded_with_a_recording_status_callback(
    spoc_call: SpocCall,
) -> None:
    record = spoc_call.record
    assert record.get("recordingStatusCallback") == (
        f"{PUBLIC}/twilio/voice/recording?call_sid={spoc_call.call_sid}"
    )
    assert record.get("recordingStatusCallbackEvent") == "completed"
    assert record.get("recordingStatusCallbackMethod") == "POST"
    assert record.get("transcribe") is None and record.get("transcribeCallback") is None


def test_a_recording_sent_twice_is_one_voicemail_for_the_spoc(
    app: Flask, twilio: Any, spoc_call: SpocCall
) -> None:
    first = left_message(twilio, spoc_call)
    again = left_message(twilio, spoc_call)  # Twilio's retry, or a duplicate
    assert (first.status_code, again.status_code) == (204, 204)
    assert redis_client(app).xlen(events.BUFFER) == 0  # stored at once, not kept for later
    (voicemail,) = stored(app)
    assert voicemail.recording_sid == RECORDING
    assert voicemail.recording_url == TWILIO_RECORDING_URL
    assert voicemail.duration_seconds == 14
    assert voicemail.spoc == f"client:{SPOC_NAME}"
    assert voicemail.status == "new"
    assert voicemail.customer_id is not None


def test_a_recording_that_did_not_complete_is_no_voicemail(
    app: Flask, twilio: Any, spoc_call: SpocCall
) -> None:
    assert left_message(twilio, spoc_call, RecordingStatus="absent").status_code == 204
    assert stored(app) == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"RecordingSid": ""},
        {"RecordingSid": "not-a-sid"},
        {"RecordingSid": "CA" + "1" * 32},  # a CallSid is not a RecordingSid
        {"CallSid": "RE" + "1" * 32},
    ],
    ids=["missing", "malformed", "call-sid", "wrong-call-sid"],
)
def test_a_callback_without_a_real_recording_sid_or_call_sid_is_refused(
    app: Flask, twilio: Any, overrides: dict[str, str]
) -> None:
    params = recording_params("CA" + "1" * 32, **overrides)
    answer = twilio.post("/twilio/voice/recording", params)
    assert answer.status_code == 400
    assert set(answer.get_json()) == {"error"}
    assert stored(app) == []


def test_an_unsigned_recording_callback_is_refused(app: Flask, twilio: Any) -> None:
    params = recording_params("CA" + "1" * 32)
    answer = twilio.post("/twilio/voice/recording", params, signature="forged")
    assert answer.status_code == 403
    assert stored(app) == []


def test_a_transcript_is_asked_for_and_kept_only_when_transcription_is_on(
    app: Flask, twilio: Any, client: FlaskClient, spoc_call: SpocCall, spoc: Any
) -> None:
    app.extensions[SETTINGS] = dataclasses.replace(
        app.extensions[SETTINGS], voicemail_transcribe=True
    )
    sid = spoc_call.call_sid
    # the caller presses a key during the SPOC's message: the same voicemail, now transcribed
    again = parse(twilio.post(f"/twilio/voice/emergency?call_sid={sid}&msg=voicemail", {}))
    record = again.find("Record")
    assert record is not None
    assert record.get("transcribe") == "true"
    assert record.get("transcribeCallback") == (
        f"{PUBLIC}/twilio/voice/transcription?call_sid={sid}"
    )
    assert left_message(twilio, spoc_call).status_code == 204
    transcript = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": sid,
        "RecordingSid": RECORDING,
        "RecordingUrl": TWILIO_RECORDING_URL,
        "TranscriptionSid": "TR" + "2" * 32,
        "TranscriptionStatus": "completed",
        "TranscriptionText": "Hello Jo, it is Pat about the boiler.",
        "TranscriptionUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/"
        f"Transcriptions/TR{'2' * 32}",
    }
    path = urlsplit(record.get("transcribeCallback") or "")
    assert twilio.post(f"{path.path}?{path.query}", transcript).status_code == 204
    (listed,) = client.get("/api/v1/voicemails", headers=spoc.headers).get_json()["voicemails"]
    assert listed["transcription"] == "Hello Jo, it is Pat about the boiler."


# --- what the caller is told ---------------------------------------------------------------------


def test_the_caller_is_told_their_message_was_recorded_only_when_it_was(
    twilio: Any,
) -> None:
    sid = "CA" + "1" * 32
    path = f"/twilio/voice/voicemail?call_sid={sid}&lang=en-GB&slow=0"
    recorded = parse(
        twilio.post(
            path,
            {"CallSid": sid, "RecordingUrl": TWILIO_RECORDING_URL, "RecordingDuration": "14"},
        )
    )
    words = spoken(recorded)
    assert "your message has been recorded for your named contact" in words
    assert "no message was recorded" not in words
    assert "999" in words and list(recorded)[-1].tag == "Hangup"

    for nothing in (
        {"CallSid": sid, "RecordingUrl": TWILIO_RECORDING_URL, "RecordingDuration": "0"},
        {"CallSid": sid, "RecordingDuration": "5"},  # no RecordingUrl
        {"CallSid": sid, "RecordingUrl": TWILIO_RECORDING_URL},  # no RecordingDuration
    ):
        empty = parse(twilio.post(path, nothing))
        words = spoken(empty)
        assert "no message was recorded" in words, nothing
        assert "has been recorded" not in words
        assert "nothing has been passed to your named contact" in words
        assert "dial 999" in words and "Goodbye" in words
        assert [e.tag for e in empty] == ["Say", "Say", "Say", "Hangup"]


def test_the_caller_is_told_in_their_own_language(twilio: Any) -> None:
    sid = "CA" + "1" * 32
    path = f"/twilio/voice/voicemail?call_sid={sid}&lang=cy-GB&slow=0"
    empty = parse(twilio.post(path, {"CallSid": sid, "RecordingDuration": "0"}))
    assert "ni chafodd neges ei recordio" in spoken(empty)
    assert {s.get("language") for s in empty.iter("Say")} == {"cy-GB"}


# --- the API -------------------------------------------------------------------------------------


def test_the_spoc_and_supervisors_see_the_voicemail_and_other_agents_do_not(
    app: Flask,
    twilio: Any,
    client: FlaskClient,
    spoc_call: SpocCall,
    spoc: Any,
    supervisor: Any,
    make_staff: Callable[..., Any],
) -> None:
    left_message(twilio, spoc_call)
    (voicemail,) = stored(app)
    expected = {
        "id": voicemail.id,
        "call_sid": spoc_call.call_sid,
        "customer": {"reference": "HMS-0001", "name": "Pat Example"},
        "from": CUSTOMER,
        "spoc": f"client:{SPOC_NAME}",
        "recorded_at": (LEFT_AT + timedelta(minutes=1)).isoformat(),
        "duration_seconds": 14,
        "transcription": None,
        "status": "new",
        "handled_at": None,
        "handled_by": None,
        "audio_url": f"/api/v1/voicemails/{voicemail.id}/audio",
    }
    for who in (supervisor, spoc):
        answer = client.get("/api/v1/voicemails", headers=who.headers)
        assert answer.status_code == 200
        assert answer.get_json() == {"voicemails": [expected]}
    assert client.get("/api/v1/voicemails?status=handled", headers=spoc.headers).get_json() == {
        "voicemails": []
    }
    assert client.get("/api/v1/voicemails?status=bogus", headers=spoc.headers).status_code == 422
    assert client.get("/api/v1/voicemails?status=", headers=spoc.headers).status_code == 422

    other = make_staff("agent", "alex.other")
    assert client.get("/api/v1/voicemails", headers=other.headers).get_json() == {"voicemails": []}
    audio = client.get(f"/api/v1/voicemails/{voicemail.id}/audio", headers=other.headers)
    assert audio.status_code == 403
    handled = client.post(f"/api/v1/voicemails/{voicemail.id}/handled", headers=other.headers)
    assert handled.status_code == 403
    assert client.get("/api/v1/voicemails").status_code == 401
    assert stored(app)[0].status == "new"


def test_the_audio_is_fetched_from_twilios_rest_api_through_callguard(
    app: Flask,
    twilio: Any,
    client: FlaskClient,
    fake_twilio: FakeTwilio,
    spoc_call: SpocCall,
    spoc: Any,
) -> None:
    left_message(twilio, spoc_call)
    (voicemail,) = stored(app)
    fake_twilio.reset()
    answer = client.get(f"/api/v1/voicemails/{voicemail.id}/audio", headers=spoc.headers)
    assert answer.status_code == 200
    assert answer.mimetype == "audio/mpeg"
    (fetched,) = fake_twilio.requests
    assert (fetched.method, fetched.path) == ("GET", MEDIA_PATH)  # never RecordingUrl's host
    assert answer.get_data() == _fake_answer(fetched)

    fake_twilio.fail("/Recordings/", 500, "Twilio is down")
    broken = client.get(f"/api/v1/voicemails/{voicemail.id}/audio", headers=spoc.headers)
    assert broken.status_code == 502
    assert "recording" in broken.get_json()["error"]


def _fake_answer(request: Any) -> bytes:
    import json

    return json.dumps(request.answer).encode()


def test_handled_once_then_twilios_copy_is_deleted_once_after_the_retention(
    app: Flask,
    twilio: Any,
    client: FlaskClient,
    fake_twilio: FakeTwilio,
    spoc_call: SpocCall,
    spoc: Any,
    supervisor: Any,
) -> None:
    from handlers.schedule import daily

    left_message(twilio, spoc_call)
    (voicemail,) = stored(app)
    url = f"/api/v1/voicemails/{voicemail.id}/handled"
    handled_at = LEFT_AT + timedelta(hours=2)
    with time_machine.travel(handled_at, tick=False):
        answer = client.post(url, headers=spoc.headers)
        assert answer.status_code == 200
        body = answer.get_json()
        assert (body["status"], body["handled_by"]) == ("handled", SPOC_NAME)
        assert body["handled_at"] == handled_at.isoformat()
        second = client.post(url, headers=supervisor.headers)
    assert second.status_code == 409
    assert "already marked handled by jo.bloggs" in second.get_json()["error"]
    with database(app).sessions() as sess:
        audits = sess.scalars(
            select(AuditEntry).where(AuditEntry.action == "voicemail.handled")
        ).all()
        assert [(a.actor, a.entity_id) for a in audits] == [(SPOC_NAME, voicemail.id)]

    def deletes() -> list[Any]:
        return [r for r in fake_twilio.requests if r.method == "DELETE"]

    fake_twilio.reset()
    with time_machine.travel(handled_at + timedelta(days=29), tick=False):
        assert daily()["voicemail_recordings_deleted"] == 0
    assert deletes() == []  # still within the 30 days
    with time_machine.travel(handled_at + timedelta(days=31), tick=False):
        assert daily()["voicemail_recordings_deleted"] == 1
    (deleted,) = deletes()
    assert deleted.path == DELETE_PATH
    assert stored(app)[0].twilio_deleted_at == handled_at + timedelta(days=31)
    with time_machine.travel(handled_at + timedelta(days=32), tick=False):
        assert daily()["voicemail_recordings_deleted"] == 0
    assert len(deletes()) == 1, "Twilio's copy is deleted once"

    gone = client.get(f"/api/v1/voicemails/{voicemail.id}/audio", headers=spoc.headers)
    assert gone.status_code == 404
    assert "deleted from Twilio" in gone.get_json()["error"]
    assert [r for r in fake_twilio.requests if r.method == "GET"] == []


def test_a_recording_twilio_no_longer_has_counts_as_deleted_and_a_failure_is_tried_again(
    app: Flask,
    twilio: Any,
    client: FlaskClient,
    fake_twilio: FakeTwilio,
    spoc_call: SpocCall,
    spoc: Any,
) -> None:
    from handlers.schedule import daily

    left_message(twilio, spoc_call)
    (voicemail,) = stored(app)
    with time_machine.travel(LEFT_AT + timedelta(hours=1), tick=False):
        client.post(f"/api/v1/voicemails/{voicemail.id}/handled", headers=spoc.headers)
    fake_twilio.reset()
    fake_twilio.fail("/Recordings/", 500, "Internal error")
    with time_machine.travel(LEFT_AT + timedelta(days=40), tick=False):
        assert daily()["voicemail_recordings_deleted"] == 0
    assert stored(app)[0].twilio_deleted_at is None  # tried again tomorrow
    fake_twilio.reset()
    fake_twilio.fail("/Recordings/", 404, "The requested resource was not found")
    with time_machine.travel(LEFT_AT + timedelta(days=41), tick=False):
        assert daily()["voicemail_recordings_deleted"] == 1
    assert stored(app)[0].twilio_deleted_at is not None
    fake_twilio.reset()
    with time_machine.travel(LEFT_AT + timedelta(days=42), tick=False):
        daily()
    assert [r for r in fake_twilio.requests if r.method == "DELETE"] == []


# --- the pages -----------------------------------------------------------------------------------


def test_the_spoc_plays_and_handles_it_on_the_voicemails_page(
    app: Flask,
    twilio: Any,
    fake_twilio: FakeTwilio,
    spoc_call: SpocCall,
    spoc: Any,
    supervisor: Any,
    make_staff: Callable[..., Any],
) -> None:
    left_message(twilio, spoc_call)
    (voicemail,) = stored(app)
    browser = signed_in(app, spoc)
    page = browser.get("/voicemails").get_data(as_text=True)
    assert 'href="/voicemails">Voicemails</a>' in page  # in the navigation
    player = re.search(r'<audio controls[^>]* src="([^"]+)"', page)
    assert player is not None and player[1] == f"/voicemails/{voicemail.id}/audio"
    assert "Pat Example" in page and "Mark handled" in page

    fake_twilio.reset()
    audio = browser.get(player[1])
    assert audio.status_code == 200 and audio.mimetype == "audio/mpeg"
    assert [(r.method, r.path) for r in fake_twilio.requests] == [("GET", MEDIA_PATH)]

    other = signed_in(app, make_staff("agent", "alex.other", password="alex-other-pass-2026"))
    assert "Pat Example" not in other.get("/voicemails").get_data(as_text=True)
    assert other.get(player[1]).status_code == 403

    forged = browser.post(f"/voicemails/{voicemail.id}/handled", data={})
    assert forged.status_code == 400 and stored(app)[0].status == "new"  # no CSRF token
    token = CSRF.search(page)
    assert token is not None
    done = browser.post(f"/voicemails/{voicemail.id}/handled", data={"csrf_token": token[1]})
    assert done.status_code == 302
    assert stored(app)[0].status == "handled"
    after = browser.get("/voicemails").get_data(as_text=True)
    assert "Mark handled" not in after and f"by {SPOC_NAME}" in after

    record = signed_in(app, supervisor).get("/supervisor/customers/HMS-0001")
    section = record.get_data(as_text=True).split("<h2>Voicemails</h2>", 1)[1].split("<h2>")[0]
    assert f"for {SPOC_NAME}, 14 s: handled" in section


def test_a_recording_callback_during_a_database_outage_is_kept_then_stored_once(
    app: Flask, app_with: Callable[..., Flask], twilio: Any, spoc_call: SpocCall
) -> None:
    from handlers.contact import sweep_call_events

    twilio.client = app_with(
        DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    ).test_client()
    assert left_message(twilio, spoc_call).status_code == 204
    assert left_message(twilio, spoc_call).status_code == 204  # Twilio's retry
    assert redis_client(app).xlen(events.BUFFER) == 2
    assert stored(app) == []
    with app.app_context():
        sweep_call_events()  # PostgreSQL is back: moved across, and the voicemail stored
    (voicemail,) = stored(app)
    assert (voicemail.recording_sid, voicemail.spoc) == (RECORDING, f"client:{SPOC_NAME}")
    assert redis_client(app).xlen(events.BUFFER) == 0
