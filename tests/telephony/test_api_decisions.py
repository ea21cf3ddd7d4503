"""Staff run a restriction's life through the API: it applies from its notice, reviews and
appeals change the phone line at once, the decider cannot hear the appeal, and clashes are
reported; driven with signed inbound calls to see what the caller gets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import time_machine
from flask.testing import FlaskClient

from tests.calls import parse, spoken

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # Monday
CUSTOMER = "+447400100001"


def writing_only_heard(twilio: Any) -> bool:
    return "in writing only" in spoken(parse(twilio.incoming(CUSTOMER)))


def create(client: FlaskClient, staff: Any, **body: Any) -> dict[str, Any]:
    response = client.post(
        "/api/v1/customers/HMS-0001/restrictions",
        json={"kind": "written_only", "reason": "Abuse (4.2)", **body},
        headers=staff.headers,
    )
    assert response.status_code == 201, response.get_json()
    data: dict[str, Any] = response.get_json()
    return data


def test_a_restriction_applies_to_calls_from_the_day_its_notice_is_recorded(
    client: FlaskClient,
    supervisor: Any,
    twilio: Any,
    make_customer: Callable[..., Any],
) -> None:
    make_customer()
    with time_machine.travel(NOW, tick=False):
        made = create(client, supervisor)
        assert made["state"] == "awaiting_notice" and made["review_due_on"] is None
        assert not writing_only_heard(twilio)
        sent = client.post(
            f"/api/v1/restrictions/{made['id']}/notice",
            json={"sent_on": "2026-03-02", "method": "email"},
            headers=supervisor.headers,
        )
        assert sent.status_code == 200
        assert (sent.get_json()["state"], sent.get_json()["review_due_on"]) == (
            "active",
            "2027-03-02",
        )
        assert writing_only_heard(twilio)
        again = client.post(
            f"/api/v1/restrictions/{made['id']}/notice",
            json={"sent_on": "2026-03-02", "method": "email"},
            headers=supervisor.headers,
        )
        assert again.status_code == 409


def test_the_notice_date_cannot_be_in_the_future_or_before_the_decision(
    client: FlaskClient, supervisor: Any, make_customer: Callable[..., Any]
) -> None:
    make_customer()
    with time_machine.travel(NOW, tick=False):
        made = create(client, supervisor, decided_on="2026-02-27")
        for day, message in (("2026-03-03", "in the future"), ("2026-02-26", "before")):
            response = client.post(
                f"/api/v1/restrictions/{made['id']}/notice",
                json={"sent_on": day, "method": "post"},
                headers=supervisor.headers,
            )
            assert response.status_code == 422 and message in response.get_json()["error"]


def test_danger_applies_at_once(
    client: FlaskClient, supervisor: Any, twilio: Any, make_customer: Callable[..., Any]
) -> None:
    make_customer()
    with time_machine.travel(NOW, tick=False):
        made = create(client, supervisor, apply_now=True, urgent_reason="Threats (4.6)")
        assert made["state"] == "active" and made["notice_due_on"] == "2026-03-04"
        assert writing_only_heard(twilio)
        due = client.get("/api/v1/due", headers=supervisor.headers).get_json()["due"]
        assert [(d["what"], d["restriction_id"]) for d in due] == [("letter", made["id"])]


def test_a_review_that_ends_it_frees_the_phone_line_at_once(
    client: FlaskClient, supervisor: Any, twilio: Any, make_customer: Callable[..., Any]
) -> None:
    make_customer()
    with time_machine.travel(NOW, tick=False):
        made = create(client, supervisor, notice_sent_on="2026-03-02")
    with time_machine.travel(datetime(2027, 2, 15, 10, tzinfo=UTC), tick=False):
        reviews = client.get("/api/v1/reviews", headers=supervisor.headers).get_json()["reviews"]
        assert [(r["restriction_id"], r["what"]) for r in reviews] == [(made["id"], "review_due")]
        assert writing_only_heard(twilio)
        ended = client.post(
            f"/api/v1/restrictions/{made['id']}/review",
            json={"outcome": "end", "notes": "Contact has been civil for a year"},
            headers=supervisor.headers,
        )
        assert ended.status_code == 200
        assert ended.get_json()["restriction"]["state"] == "ended"
        assert not writing_only_heard(twilio)


def test_an_appeal_is_heard_by_someone_else_and_overturning_frees_the_line(
    client: FlaskClient,
    supervisor: Any,
    make_staff: Callable[..., Any],
    twilio: Any,
    make_customer: Callable[..., Any],
) -> None:
    make_customer()
    other = make_staff("supervisor", "olu.other")
    with time_machine.travel(NOW, tick=False):
        made = create(client, supervisor, notice_sent_on="2026-03-02")
        lodged = client.post(
            f"/api/v1/restrictions/{made['id']}/appeals",
            json={"lodged_on": "2026-03-02", "grounds": "I was not abusive"},
            headers=supervisor.headers,
        )
        assert lodged.status_code == 201
        appeal = lodged.get_json()
        assert appeal["due_on"] == "2026-03-30"
        second = client.post(
            f"/api/v1/restrictions/{made['id']}/appeals",
            json={"grounds": "again"},
            headers=supervisor.headers,
        )
        assert second.status_code == 409
        assert writing_only_heard(twilio)  # it stays in force while the appeal is heard
        refused = client.post(
            f"/api/v1/appeals/{appeal['id']}/decision",
            json={"outcome": "overturned", "notes": "n"},
            headers=supervisor.headers,
        )
        assert refused.status_code == 403
        assert "did not decide the restriction" in refused.get_json()["error"]
        decided = client.post(
            f"/api/v1/appeals/{appeal['id']}/decision",
            json={"outcome": "overturned", "notes": "The recordings do not show abuse"},
            headers=other.headers,
        )
        assert decided.status_code == 200 and decided.get_json()["decided_by"] == "olu.other"
        assert not writing_only_heard(twilio)


def test_adding_a_restriction_another_overrides_says_which_wins(
    client: FlaskClient, supervisor: Any, make_customer: Callable[..., Any]
) -> None:
    make_customer()
    with time_machine.travel(NOW, tick=False):
        writing = create(client, supervisor, notice_sent_on="2026-03-02")
        spoc = create(client, supervisor, kind="spoc", spoc="+441332000555")
    assert writing["warnings"] == []
    (warning,) = spoc["warnings"]
    assert f"restriction {writing['id']} (Writing only) overrides this one" in warning
