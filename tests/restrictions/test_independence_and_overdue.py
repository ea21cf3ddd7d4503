"""Decisions independent, and no restriction without an end in sight, through the API on real
PostgreSQL with signed inbound calls to hear what the caller gets:

- nobody who decided, reviewed, varied or continued a restriction (or the one it varied) decides
  an appeal against it (403, saying why); an admin who did may, with a recorded override_reason;
- an overdue review keeps the restriction applying, and the daily job presses it on supervisors
  every day and on admins after 30 days (shown on the Due list and page); with
  ``[reviews] lapse_after_days`` it lapses, on the audit trail, with a letter due;
- a varied restriction keeps the line protected: its terms route the caller until the
  successor's notice is recorded (from the routing cache, a cache miss, and a rebuilt cache).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from restrictions import cache
from restrictions.models import ApiToken
from restrictions.settings import ReviewRules, SettingsError, parse_settings
from telephony.config import SETTINGS
from telephony.database import database
from telephony.redis_store import redis_client
from tests.calls import parse, spoken
from tests.conftest import CSRF_FIELD, Staff

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # Monday 2 March 2026
CUSTOMER = "+447400100001"
REVIEW_DUE = date(2027, 3, 2)  # 12 months after the notice of 2 March 2026
SPOC = {"kind": "spoc", "reason": "Eased: one named contact", "spoc": "+441332000555"}


def on(day: date, hour: int = 9) -> Any:
    """The landlord's clock on ``day`` (a morning, so the day is the same in London)."""
    return time_machine.travel(datetime(day.year, day.month, day.day, hour, tzinfo=UTC), tick=False)


def writing_only_heard(twilio: Any) -> bool:
    return "in writing only" in spoken(parse(twilio.incoming(CUSTOMER)))


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    data: dict[str, Any] = response.get_json()
    return data


def create(client: FlaskClient, staff: Staff, **body: Any) -> dict[str, Any]:
    return ok(
        client.post(
            "/api/v1/customers/HMS-0001/restrictions",
            json={"kind": "written_only", "reason": "Abuse (4.2)", **body},
            headers=staff.headers,
        ),
        201,
    )


def post(client: FlaskClient, staff: Staff, path: str, body: dict[str, Any]) -> Any:
    return client.post(f"/api/v1{path}", json=body, headers=staff.headers)


def lodge(client: FlaskClient, staff: Staff, restriction_id: int) -> int:
    appeal = ok(
        post(client, staff, f"/restrictions/{restriction_id}/appeals", {"grounds": "Unfair"}),
        201,
    )
    return int(appeal["id"])


def decide(client: FlaskClient, staff: Staff, appeal_id: int, **body: Any) -> Any:
    return post(
        client,
        staff,
        f"/appeals/{appeal_id}/decision",
        {"outcome": "upheld", "notes": "The recordings bear it out", **body},
    )


def audit_of(client: FlaskClient, staff: Staff) -> list[dict[str, Any]]:
    customer = ok(client.get("/api/v1/customers/HMS-0001", headers=staff.headers))
    entries: list[dict[str, Any]] = customer["audit"]
    return entries


def due(client: FlaskClient, staff: Staff) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok(client.get("/api/v1/due", headers=staff.headers))["due"]
    return items


# --- independence --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "how"),
    [("continue", "continued it"), ("vary", "varied it"), ("end", "ended it")],
)
def test_whoever_reviewed_it_may_not_decide_its_appeal(
    client: FlaskClient,
    supervisor: Staff,
    make_staff: Callable[..., Staff],
    make_customer: Callable[..., Any],
    outcome: str,
    how: str,
) -> None:
    make_customer()
    reviewer = make_staff("supervisor", "rhys.reviewer")
    independent = make_staff("supervisor", "ines.independent")
    with time_machine.travel(NOW, tick=False):
        made = create(client, supervisor, notice_sent_on="2026-03-02")
        appeal_id = lodge(client, supervisor, made["id"])
        body: dict[str, Any] = {"outcome": outcome, "notes": "Looked at it again"}
        if outcome == "vary":
            body["successor"] = SPOC
        ok(post(client, reviewer, f"/restrictions/{made['id']}/review", body))

        refused = decide(client, reviewer, appeal_id)
        assert refused.status_code == 403
        error = refused.get_json()["error"]
        assert "did not decide the restriction, nor review, vary or continue it" in error
        assert f"you {how} at review on 2026-03-02" in error
        assert "override_reason" not in error  # a supervisor cannot override at all
        overriding = decide(client, reviewer, appeal_id, override_reason="I know the case")
        assert overriding.status_code == 403

        decided = ok(decide(client, independent, appeal_id))
        assert decided["decided_by"] == "ines.independent" and decided["override_reason"] is None


def test_the_decider_of_the_restriction_it_varied_may_not_decide_the_successors_appeal(
    client: FlaskClient,
    supervisor: Staff,
    make_staff: Callable[..., Staff],
    make_customer: Callable[..., Any],
) -> None:
    make_customer()
    varier = make_staff("supervisor", "val.varier")
    independent = make_staff("supervisor", "ines.independent")
    with time_machine.travel(NOW, tick=False):
        made = create(client, supervisor, notice_sent_on="2026-03-02")
        successor = {**SPOC, "notice_sent_on": "2026-03-02"}
        varied = ok(
            post(
                client,
                varier,
                f"/restrictions/{made['id']}/review",
                {"outcome": "vary", "notes": "Ease it", "successor": successor},
            )
        )
        appeal_id = lodge(client, supervisor, varied["successor"])
        for took_part, how in (
            (varier, "decided it"),
            (supervisor, f"decided restriction {made['id']}, which it replaced"),
        ):
            refused = decide(client, took_part, appeal_id)
            assert refused.status_code == 403 and how in refused.get_json()["error"]
        assert ok(decide(client, independent, appeal_id))["outcome"] == "upheld"


def test_an_admin_who_took_part_decides_only_with_a_reason_that_is_recorded(
    client: FlaskClient,
    supervisor: Staff,
    make_staff: Callable[..., Staff],
    make_customer: Callable[..., Any],
) -> None:
    make_customer()
    admin = make_staff("admin", "ada.admin")
    with time_machine.travel(NOW, tick=False):
        made = create(client, supervisor, notice_sent_on="2026-03-02")
        appeal_id = lodge(client, supervisor, made["id"])
        ok(
            post(
                client,
                admin,
                f"/restrictions/{made['id']}/review",
                {"outcome": "continue", "notes": "Still needed"},
            )
        )
        refused = decide(client, admin, appeal_id)
        assert refused.status_code == 403
        assert "you continued it at review on 2026-03-02" in refused.get_json()["error"]
        assert "override_reason" in refused.get_json()["error"]
        blank = decide(client, admin, appeal_id, override_reason="   ")
        assert blank.status_code == 403

        reason = "Nobody else at the landlord has not touched this case"
        decided = ok(decide(client, admin, appeal_id, override_reason=reason))
    assert (decided["outcome"], decided["decided_by"]) == ("upheld", "ada.admin")
    assert decided["override_reason"] == reason
    assert (
        ok(client.get(f"/api/v1/appeals/{appeal_id}", headers=admin.headers))["override_reason"]
        == reason
    )
    (entry,) = [
        e for e in audit_of(client, admin) if e["action"] == "appeal.independence_overridden"
    ]
    assert (entry["actor"], entry["entity_id"], entry["note"]) == ("ada.admin", appeal_id, reason)
    assert entry["after"]["took_part"].startswith("continued it at review")
    (upheld,) = [e for e in audit_of(client, admin) if e["action"] == "appeal.upheld"]
    assert upheld["after"]["override_reason"] == reason


# --- no restriction without an end in sight ------------------------------------------------------


def test_the_reviews_settings_default_to_keep_applying_and_escalate_to_admins_after_30_days() -> (
    None
):
    assert parse_settings({}).reviews == ReviewRules(admins_after_days=30, lapse_after_days=None)
    chosen = parse_settings({"reviews": {"admins_after_days": 14, "lapse_after_days": 90}})
    assert chosen.reviews == ReviewRules(admins_after_days=14, lapse_after_days=90)
    for wrong in ({"lapse_after_days": 0}, {"admins_after_days": "30"}, {"lapse_after": 9}):
        with pytest.raises(SettingsError, match="reviews"):
            parse_settings({"reviews": wrong})


def for_years(app: Flask, staff: Staff) -> Staff:
    """The staff member's API token still works in the years these tests travel to."""
    with database(app).sessions() as sess:
        sess.execute(
            update(ApiToken)
            .where(ApiToken.user_id == staff.user.id)
            .values(expires_at=datetime(2100, 1, 1, tzinfo=UTC))
        )
        sess.commit()
    return staff


def daily(app: Flask) -> dict[str, int]:
    from handlers.schedule import daily as run

    with app.app_context():
        return run()


def overdue_item(client: FlaskClient, staff: Staff) -> dict[str, Any]:
    (item,) = [i for i in due(client, staff) if i["what"] == "review_overdue"]
    return item


def due_page(client: FlaskClient, staff: Staff) -> str:
    """The Due page's text, signed in with the sign-in form's own CSRF token."""
    form = client.get("/sign-in").get_data(as_text=True)
    token = CSRF_FIELD.search(form)
    assert token is not None
    signed_in = client.post(
        "/sign-in",
        data={"csrf_token": token[1], "name": staff.user.name, "password": staff.password},
    )
    assert signed_in.status_code in (302, 303), signed_in.get_data(as_text=True)
    page = client.get("/supervisor/due")
    assert page.status_code == 200
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.get_data(as_text=True)))


def test_an_overdue_review_keeps_applying_and_is_pressed_daily_then_on_admins(
    app: Flask,
    client: FlaskClient,
    supervisor: Staff,
    twilio: Any,
    make_customer: Callable[..., Any],
) -> None:
    make_customer()
    for_years(app, supervisor)
    with time_machine.travel(NOW, tick=False):
        made = create(client, supervisor, notice_sent_on="2026-03-02")
    assert made["review_due_on"] == REVIEW_DUE.isoformat()
    with on(REVIEW_DUE):  # due today: not overdue yet
        assert daily(app)["escalated_to_supervisors"] == 0
        (item,) = due(client, supervisor)
        assert (item["what"], item["escalated_to"], item["escalations"]) == ("review_due", None, 0)
    first_day = REVIEW_DUE + timedelta(days=1)
    with on(first_day):
        done = daily(app)
        assert (done["escalated_to_supervisors"], done["escalated_to_admins"]) == (1, 0)
        assert daily(app)["escalated_to_supervisors"] == 0  # once a day
        item = overdue_item(client, supervisor)
        assert (item["escalated_to"], item["escalated_on"], item["escalations"]) == (
            "supervisors",
            first_day.isoformat(),
            1,
        )
    with on(REVIEW_DUE + timedelta(days=2)):
        assert daily(app)["escalated_to_supervisors"] == 1  # again the next day
        assert overdue_item(client, supervisor)["escalations"] == 2
    with on(REVIEW_DUE + timedelta(days=29)):
        assert daily(app)["escalated_to_supervisors"] == 1
        assert overdue_item(client, supervisor)["escalated_to"] == "supervisors"
    thirtieth = REVIEW_DUE + timedelta(days=30)
    with on(thirtieth):
        done = daily(app)
        assert (done["escalated_to_supervisors"], done["escalated_to_admins"]) == (0, 1)
        item = overdue_item(client, supervisor)
        assert (item["escalated_to"], item["escalations"], item["days_overdue"]) == (
            "admins",
            4,
            30,
        )
        assert "escalated to admins" in due_page(client, supervisor)
    escalated = [e for e in audit_of(client, supervisor) if e["action"] == "review.escalated"]
    assert sorted(e["after"]["to"] for e in escalated) == ["admins", "supervisors"]
    with on(REVIEW_DUE + timedelta(days=183)):  # by default it never lapses: it still applies
        assert daily(app)["lapsed"] == 0
        assert writing_only_heard(twilio)
        item = overdue_item(client, supervisor)
        assert (item["days_overdue"], item["escalated_to"]) == (183, "admins")


def test_an_overdue_review_lapses_when_the_organisation_says_so(
    app: Flask,
    client: FlaskClient,
    supervisor: Staff,
    twilio: Any,
    make_customer: Callable[..., Any],
) -> None:
    settings = app.extensions[SETTINGS]
    app.extensions[SETTINGS] = dataclasses.replace(
        settings, reviews=ReviewRules(admins_after_days=30, lapse_after_days=60)
    )
    make_customer()
    for_years(app, supervisor)
    with time_machine.travel(NOW, tick=False):
        made = create(client, supervisor, notice_sent_on="2026-03-02")
    with on(REVIEW_DUE + timedelta(days=59)):
        done = daily(app)
        assert (done["escalated_to_admins"], done["lapsed"]) == (1, 0)
        assert writing_only_heard(twilio)
    lapse_day = REVIEW_DUE + timedelta(days=60)
    with on(lapse_day):
        done = daily(app)
        assert (done["escalated_to_admins"], done["lapsed"]) == (0, 1)
        assert daily(app)["lapsed"] == 0
        assert not writing_only_heard(twilio)  # it no longer applies
        lapsed = ok(client.get(f"/api/v1/restrictions/{made['id']}", headers=supervisor.headers))
        assert (lapsed["state"], lapsed["lapsed_on"], lapsed["in_force"]) == (
            "ended",
            lapse_day.isoformat(),
            False,
        )
        assert lapsed["end_reason"].startswith("lapsed: its review was due on 2027-03-02")
        (letter,) = [i for i in due(client, supervisor) if i["restriction_id"] == made["id"]]
        assert (letter["what"], letter["due_on"]) == ("lapse_letter", lapse_day.isoformat())
        recorded = post(
            client,
            supervisor,
            f"/restrictions/{made['id']}/lapse-letter",
            {"sent_on": lapse_day.isoformat()},
        )
        assert ok(recorded)["lapse_letter_sent_on"] == lapse_day.isoformat()
        assert due(client, supervisor) == []
        again = post(
            client,
            supervisor,
            f"/restrictions/{made['id']}/lapse-letter",
            {"sent_on": lapse_day.isoformat()},
        )
        assert again.status_code == 409
    actions = [e["action"] for e in audit_of(client, supervisor)]
    assert "restriction.lapsed" in actions and "restriction.lapse_letter_recorded" in actions
    (entry,) = [e for e in audit_of(client, supervisor) if e["action"] == "restriction.lapsed"]
    assert entry["actor"] == "callguard" and "lapse_after_days = 60" in entry["note"]


# --- a varied restriction keeps the line protected ----------------------------------------------


def vary_by_review(client: FlaskClient, supervisor: Staff, other: Staff, old_id: int) -> int:
    body = {"outcome": "vary", "notes": "Ease it", "successor": SPOC}
    done = ok(post(client, supervisor, f"/restrictions/{old_id}/review", body))
    return int(done["successor"])


def vary_on_appeal(client: FlaskClient, supervisor: Staff, other: Staff, old_id: int) -> int:
    appeal_id = lodge(client, supervisor, old_id)
    done = ok(decide(client, other, appeal_id, outcome="varied", successor=SPOC))
    return int(done["successor"])


@pytest.mark.parametrize("vary", [vary_by_review, vary_on_appeal], ids=["review", "appeal"])
def test_after_a_vary_the_old_terms_route_the_caller_until_the_successors_notice(
    app: Flask,
    client: FlaskClient,
    supervisor: Staff,
    make_staff: Callable[..., Staff],
    twilio: Any,
    make_customer: Callable[..., Any],
    vary: Callable[[FlaskClient, Staff, Staff, int], int],
) -> None:
    make_customer()
    other = make_staff("supervisor", "olu.other")
    with time_machine.travel(NOW, tick=False):
        old = create(client, supervisor, notice_sent_on="2026-03-02")
        assert writing_only_heard(twilio)
        new_id = vary(client, supervisor, other, old["id"])
        new = ok(client.get(f"/api/v1/restrictions/{new_id}", headers=supervisor.headers))
        assert (new["state"], new["replaces"], new["in_force"]) == (
            "awaiting_notice",
            old["id"],
            False,
        )
        ended = ok(client.get(f"/api/v1/restrictions/{old['id']}", headers=supervisor.headers))
        assert (ended["state"], ended["in_force"]) == ("ended", True)

        assert writing_only_heard(twilio)  # from the routing cache
        redis = redis_client(app)
        redis.delete(cache.key(CUSTOMER))
        assert writing_only_heard(twilio)  # a cache miss: from PostgreSQL
        with database(app).sessions() as sess:
            cache.rebuild(sess, redis)
        hit, profile = cache.read(redis, CUSTOMER)
        assert hit and profile is not None
        assert [r.id for r in profile.restrictions] == [old["id"]]  # a rebuilt cache too
        assert writing_only_heard(twilio)

        ok(
            post(
                client,
                supervisor,
                f"/restrictions/{new_id}/notice",
                {"sent_on": "2026-03-02", "method": "post"},
            )
        )
        assert not writing_only_heard(twilio)  # the new terms apply from their notice
        hit, profile = cache.read(redis, CUSTOMER)
        assert profile is not None and [r.kind for r in profile.restrictions] == ["spoc"]
        ended = ok(client.get(f"/api/v1/restrictions/{old['id']}", headers=supervisor.headers))
        assert ended["in_force"] is False
    superseded = [
        e for e in audit_of(client, supervisor) if e["action"] == "restriction.superseded"
    ]
    assert [(e["entity_id"], e["after"]["successor_id"]) for e in superseded] == [
        (old["id"], new_id)
    ]


def test_a_varied_restriction_stops_applying_when_its_successor_is_withdrawn(
    client: FlaskClient,
    supervisor: Staff,
    twilio: Any,
    make_customer: Callable[..., Any],
) -> None:
    make_customer()
    with time_machine.travel(NOW, tick=False):
        old = create(client, supervisor, notice_sent_on="2026-03-02")
        new_id = vary_by_review(client, supervisor, supervisor, old["id"])
        assert writing_only_heard(twilio)
        ok(post(client, supervisor, f"/restrictions/{new_id}/end", {"reason": "Withdrawn"}))
        assert not writing_only_heard(twilio)
