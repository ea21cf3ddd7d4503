"""The routing decision as a pure function: restrictions + time + settings → a Route.

One test per kind of restriction and what the caller gets, then precedence, appeals, the
London wall clock across the clocks changing, the weekly allowance and the cache round trip.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from restrictions.destination import Destination
from restrictions.routing import (
    ActiveRestriction,
    CallerProfile,
    RouteKind,
    RoutingSettings,
    decide,
    default_route,
    needs_weekly_count,
    week_start,
)

SETTINGS = RoutingSettings(
    default_route=Destination.parse("dial:+441332000100"), emergency_line="+441332000999"
)
DECIDED = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # 23:30 GMT: still 1 March locally
TUESDAY_10_30_BST = datetime(2026, 6, 2, 9, 30, tzinfo=UTC)
WEDNESDAY_10_30_BST = datetime(2026, 6, 3, 9, 30, tzinfo=UTC)
WINDOWS = [{"days": ["tue"], "start": "10:00", "end": "12:00"}]
LONDON = ZoneInfo("Europe/London")


def restriction(
    kind: str,
    rid: int = 1,
    appeal: bool = False,
    decided: datetime = DECIDED,
    **details: Any,
) -> ActiveRestriction:
    return ActiveRestriction(rid, kind, details, decided, appeal)


def caller(*restrictions: ActiveRestriction) -> CallerProfile:
    return CallerProfile(7, "HMS-7", "Pat", "en-GB", False, restrictions)


# --- each kind of restriction, one by one -----------------------------------------------------


def test_no_restrictions_take_the_default_route_identified() -> None:
    route = decide(caller(), TUESDAY_10_30_BST, SETTINGS)
    assert route.kind == RouteKind.DEFAULT and route.identified and not route.ends_call
    assert str(route.destination) == "dial:+441332000100"
    assert route.flags == () and route.message is None and route.restriction_id is None


def test_warning_on_file_routes_normally_and_shows_its_local_date() -> None:
    route = decide(caller(restriction("warning")), TUESDAY_10_30_BST, SETTINGS)
    assert route.kind == RouteKind.DEFAULT and route.destination == SETTINGS.default_route
    assert route.flags == ("warning:2026-03-01",)


def test_warning_date_is_the_london_date_not_the_utc_date() -> None:
    late_summer_evening = datetime(2026, 6, 30, 23, 30, tzinfo=UTC)  # 00:30 BST on 1 July
    r = restriction("warning", decided=late_summer_evening)
    assert decide(caller(r), TUESDAY_10_30_BST, SETTINGS).flags == ("warning:2026-07-01",)


def test_spoc_by_number_is_dialled() -> None:
    route = decide(
        caller(restriction("spoc", 3, spoc="+441332000555")), TUESDAY_10_30_BST, SETTINGS
    )
    assert (route.kind, str(route.destination)) == ("spoc", "dial:+441332000555")
    assert route.restriction_id == 3 and not route.ends_call and "spoc" in route.flags


def test_spoc_by_staff_user_is_their_client() -> None:
    route = decide(caller(restriction("spoc", spoc="client:jsmith")), TUESDAY_10_30_BST, SETTINGS)
    assert (route.kind, str(route.destination)) == ("spoc", "client:jsmith")


def test_writing_only_ends_the_call_with_its_message() -> None:
    route = decide(caller(restriction("written_only", rid=4)), TUESDAY_10_30_BST, SETTINGS)
    assert route.kind == "written_only" and route.ends_call and route.destination is None
    assert route.message == "written_only" and route.restriction_id == 4


def test_limited_contact_inside_its_window_routes_to_the_default_with_a_flag() -> None:
    route = decide(
        caller(restriction("limited_contact", 6, windows=WINDOWS)), TUESDAY_10_30_BST, SETTINGS
    )
    assert route.kind == RouteKind.DEFAULT and route.destination == SETTINGS.default_route
    assert route.flags == ("limited_contact",) and route.restriction_id == 6


def test_limited_contact_inside_its_window_goes_to_the_spoc_when_there_is_one() -> None:
    profile = caller(
        restriction("limited_contact", 6, windows=WINDOWS),
        restriction("spoc", 2, spoc="+441332000555"),
    )
    route = decide(profile, TUESDAY_10_30_BST, SETTINGS)
    assert (route.kind, str(route.destination)) == ("spoc", "dial:+441332000555")
    assert set(route.flags) == {"limited_contact", "spoc"}


def test_limited_contact_outside_its_windows_gets_the_times_and_the_call_ends() -> None:
    route = decide(
        caller(restriction("limited_contact", 6, windows=WINDOWS)), WEDNESDAY_10_30_BST, SETTINGS
    )
    assert route.kind == RouteKind.OUTSIDE_WINDOW and route.ends_call
    assert route.message == "outside_window"
    assert route.message_params == {"windows": WINDOWS, "letter": False}
    assert route.restriction_id == 6


def test_the_letter_is_mentioned_only_when_the_notice_is_on_record() -> None:
    sent = ActiveRestriction(4, "written_only", {}, DECIDED, notice_sent=True)
    assert decide(caller(sent), TUESDAY_10_30_BST, SETTINGS).message_params["letter"] is True
    unsent = restriction("written_only", 4)
    assert decide(caller(unsent), TUESDAY_10_30_BST, SETTINGS).message_params["letter"] is False
    assert ActiveRestriction.from_json(json.loads(json.dumps(sent.to_json()))).notice_sent


def test_representative_only_names_the_representative_and_ends_the_call() -> None:
    r = restriction("representative_only", 5, representative="Derby Advocacy Service")
    route = decide(caller(r), TUESDAY_10_30_BST, SETTINGS)
    assert route.kind == "representative_only" and route.ends_call
    assert route.message == "representative_only"
    assert route.message_params == {"representative": "Derby Advocacy Service", "letter": False}


def test_not_engaging_on_an_issue_routes_normally_and_shows_the_issue() -> None:
    r = restriction("no_engagement", issue="boundary fence")
    route = decide(caller(r), TUESDAY_10_30_BST, SETTINGS)
    assert route.kind == RouteKind.DEFAULT and route.flags == ("no_engagement:boundary fence",)


def test_withheld_or_unknown_caller_takes_the_default_route_unidentified() -> None:
    route = decide(None, TUESDAY_10_30_BST, SETTINGS)
    assert route.kind == RouteKind.DEFAULT and not route.identified  # policy 11.3-11.4
    assert str(route.destination) == "dial:+441332000100" and route.flags == ("unidentified",)


# --- precedence: the most restrictive applicable rule wins ---------------------------------------

EVERYTHING = (
    restriction("warning", 1),
    restriction("spoc", 2, spoc="+441332000555"),
    restriction("limited_contact", 3, windows=WINDOWS),
    restriction("written_only", 4),
    restriction("representative_only", 5, representative="R"),
    restriction("no_engagement", 6, issue="rent"),
)


def without(*ids: int) -> CallerProfile:
    return caller(*[r for r in EVERYTHING if r.id not in ids])


def test_representative_only_beats_everything() -> None:
    route = decide(without(), TUESDAY_10_30_BST, SETTINGS)
    assert route.kind == "representative_only" and route.restriction_id == 5


def test_writing_only_beats_limited_contact_spoc_and_flags() -> None:
    route = decide(without(5), TUESDAY_10_30_BST, SETTINGS)
    assert route.kind == "written_only" and route.restriction_id == 4


def test_limited_contact_outside_its_window_beats_the_spoc() -> None:
    route = decide(without(4, 5), WEDNESDAY_10_30_BST, SETTINGS)
    assert route.kind == RouteKind.OUTSIDE_WINDOW and route.restriction_id == 3


def test_allowance_used_beats_the_spoc() -> None:
    profile = caller(
        restriction("spoc", 2, spoc="+441332000555"),
        restriction("limited_contact", 3, windows=WINDOWS, max_calls_per_week=1),
    )
    assert decide(profile, TUESDAY_10_30_BST, SETTINGS, 1).kind == RouteKind.ALLOWANCE_USED


def test_spoc_beats_limited_contact_inside_and_flag_only_restrictions() -> None:
    route = decide(without(4, 5), TUESDAY_10_30_BST, SETTINGS)
    assert route.kind == "spoc" and route.restriction_id == 2


def test_flags_of_every_restriction_travel_with_the_winning_route() -> None:
    route = decide(without(4, 5), TUESDAY_10_30_BST, SETTINGS)
    assert set(route.flags) == {
        "warning:2026-03-01",
        "spoc",
        "limited_contact",
        "no_engagement:rent",
    }
    ended = decide(without(), TUESDAY_10_30_BST, SETTINGS)
    assert "warning:2026-03-01" in ended.flags and "no_engagement:rent" in ended.flags


def test_the_latest_spoc_decision_is_the_one_dialled() -> None:
    older = restriction("spoc", 2, spoc="+441332000111", decided=datetime(2025, 1, 1, tzinfo=UTC))
    newer = restriction("spoc", 8, spoc="client:jo", decided=datetime(2026, 1, 1, tzinfo=UTC))
    route = decide(caller(older, newer), TUESDAY_10_30_BST, SETTINGS)
    assert (str(route.destination), route.restriction_id) == ("client:jo", 8)


def test_two_limited_contact_restrictions_must_both_allow_the_call() -> None:
    mornings = restriction("limited_contact", 3, windows=WINDOWS)
    wednesdays = restriction(
        "limited_contact", 9, windows=[{"days": ["wed"], "start": "09:00", "end": "17:00"}]
    )
    route = decide(caller(mornings, wednesdays), TUESDAY_10_30_BST, SETTINGS)
    assert route.kind == RouteKind.OUTSIDE_WINDOW and route.restriction_id == 9


# --- appeals (policy 12.3) -----------------------------------------------------------------------


def test_a_restriction_under_appeal_still_applies_and_is_flagged() -> None:
    route = decide(caller(restriction("written_only", appeal=True)), TUESDAY_10_30_BST, SETTINGS)
    assert route.kind == "written_only" and "under_appeal" in route.flags


def test_an_appeal_on_a_spoc_changes_only_the_flags() -> None:
    plain = decide(caller(restriction("spoc", spoc="+441332000555")), TUESDAY_10_30_BST, SETTINGS)
    appealed = decide(
        caller(restriction("spoc", appeal=True, spoc="+441332000555")), TUESDAY_10_30_BST, SETTINGS
    )
    assert (appealed.kind, appealed.destination) == (plain.kind, plain.destination)
    assert appealed.flags == (*plain.flags, "under_appeal")


# --- windows are Europe/London wall-clock, start inclusive, end exclusive ------------------------


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (datetime(2026, 6, 2, 8, 59, 59, tzinfo=UTC), False),  # Tue 09:59:59 BST
        (datetime(2026, 6, 2, 9, 0, 0, tzinfo=UTC), True),  # Tue 10:00 BST: start inclusive
        (datetime(2026, 6, 2, 10, 59, 59, tzinfo=UTC), True),  # Tue 11:59:59 BST
        (datetime(2026, 6, 2, 11, 0, 0, tzinfo=UTC), False),  # Tue 12:00 BST: end exclusive
        (datetime(2026, 12, 1, 9, 59, 59, tzinfo=UTC), False),  # Tue 09:59:59 GMT
        (datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC), True),  # Tue 10:00 GMT
        (datetime(2026, 12, 1, 11, 59, 59, tzinfo=UTC), True),  # Tue 11:59:59 GMT
        (datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC), False),  # Tue 12:00 GMT
        (datetime(2026, 6, 2, 10, 30, tzinfo=LONDON), True),  # the same instant in another zone
    ],
)
def test_limited_contact_windows_follow_the_london_clock(moment: datetime, inside: bool) -> None:
    route = decide(caller(restriction("limited_contact", windows=WINDOWS)), moment, SETTINGS)
    assert route.kind == (RouteKind.DEFAULT if inside else RouteKind.OUTSIDE_WINDOW)


def test_a_window_on_the_day_the_clocks_go_forward() -> None:
    # Sunday 29 March 2026: 01:00 GMT becomes 02:00 BST; 01:00-03:00 local is one hour long
    sunday = [{"days": ["sun"], "start": "01:00", "end": "03:00"}]
    profile = caller(restriction("limited_contact", windows=sunday))
    assert decide(profile, datetime(2026, 3, 29, 0, 59, tzinfo=UTC), SETTINGS).kind is (
        RouteKind.OUTSIDE_WINDOW  # 00:59 GMT
    )
    assert decide(profile, datetime(2026, 3, 29, 1, 0, tzinfo=UTC), SETTINGS).kind is (
        RouteKind.DEFAULT  # 02:00 BST
    )
    assert decide(profile, datetime(2026, 3, 29, 2, 0, tzinfo=UTC), SETTINGS).kind is (
        RouteKind.OUTSIDE_WINDOW  # 03:00 BST
    )


def test_the_weekday_is_the_london_weekday() -> None:
    # Monday 00:30 BST is still Sunday in UTC
    monday = [{"days": ["mon"], "start": "00:00", "end": "01:00"}]
    profile = caller(restriction("limited_contact", windows=monday))
    route = decide(profile, datetime(2026, 6, 7, 23, 30, tzinfo=UTC), SETTINGS)
    assert route.kind == RouteKind.DEFAULT


# --- the weekly allowance (a calendar week, Monday to Sunday, London time) -----------------------


def test_weekly_allowance_one_below_the_limit_is_routed() -> None:
    limited = restriction("limited_contact", windows=WINDOWS, max_calls_per_week=3)
    assert decide(caller(limited), TUESDAY_10_30_BST, SETTINGS, 2).kind == RouteKind.DEFAULT


def test_weekly_allowance_at_the_limit_ends_the_call_with_the_times() -> None:
    limited = restriction("limited_contact", 6, windows=WINDOWS, max_calls_per_week=3)
    used = decide(caller(limited), TUESDAY_10_30_BST, SETTINGS, 3)
    assert used.kind == RouteKind.ALLOWANCE_USED and used.ends_call and used.restriction_id == 6
    assert used.message == "allowance_used"
    assert used.message_params == {"max_calls": 3, "windows": WINDOWS, "letter": False}


def test_outside_the_window_is_told_before_the_allowance() -> None:
    limited = restriction("limited_contact", windows=WINDOWS, max_calls_per_week=1)
    assert decide(caller(limited), WEDNESDAY_10_30_BST, SETTINGS, 5).kind is (
        RouteKind.OUTSIDE_WINDOW
    )


def test_the_weekly_count_is_needed_only_with_a_cap() -> None:
    capped = restriction("limited_contact", windows=WINDOWS, max_calls_per_week=2)
    uncapped = restriction("limited_contact", windows=WINDOWS, max_calls_per_week=None)
    assert needs_weekly_count(caller(capped))
    assert needs_weekly_count(caller(uncapped, capped))
    assert not needs_weekly_count(caller(uncapped))
    assert not needs_weekly_count(caller(restriction("limited_contact", windows=WINDOWS)))
    assert not needs_weekly_count(caller(restriction("spoc", spoc="+441332000555")))
    assert not needs_weekly_count(None)


def test_a_limited_contact_without_windows_limits_only_the_calls() -> None:
    cap_only = restriction("limited_contact", max_calls_per_week=2)
    assert decide(caller(cap_only), WEDNESDAY_10_30_BST, SETTINGS, 1).kind == RouteKind.DEFAULT
    used = decide(caller(cap_only), WEDNESDAY_10_30_BST, SETTINGS, 2)
    assert used.kind == RouteKind.ALLOWANCE_USED and used.message_params["windows"] == []


def test_the_week_starts_monday_midnight_london_in_utc() -> None:
    start = week_start(datetime(2026, 6, 3, 12, tzinfo=UTC))  # a Wednesday in BST
    assert start == datetime(2026, 5, 31, 23, 0, tzinfo=UTC) and start.tzinfo is UTC


def test_the_week_start_across_the_clocks_going_forward() -> None:
    # Sunday 29 March 2026 the clocks go forward; that week began Monday 23 March 00:00 GMT
    assert week_start(datetime(2026, 3, 29, 22, 59, tzinfo=UTC)) == datetime(
        2026, 3, 23, 0, tzinfo=UTC
    )
    # Monday 30 March 00:00 BST is 29 March 23:00 UTC: the new week has begun
    assert week_start(datetime(2026, 3, 29, 23, 0, tzinfo=UTC)) == datetime(
        2026, 3, 29, 23, 0, tzinfo=UTC
    )


def test_the_week_start_across_the_clocks_going_back() -> None:
    # Sunday 25 October 2026 the clocks go back; that week began Monday 19 October 00:00 BST
    assert week_start(datetime(2026, 10, 25, 23, 59, tzinfo=UTC)) == datetime(
        2026, 10, 18, 23, 0, tzinfo=UTC
    )
    assert week_start(datetime(2026, 10, 26, 0, 0, tzinfo=UTC)) == datetime(
        2026, 10, 26, 0, 0, tzinfo=UTC
    )


# --- the default route and the fallback ----------------------------------------------------------


def test_the_fallback_default_route_keeps_its_flags() -> None:
    known = default_route(SETTINGS, identified=True, flags=("fallback",))
    assert (known.kind, str(known.destination), known.flags) == (
        RouteKind.DEFAULT,
        "dial:+441332000100",
        ("fallback",),
    )
    unknown = default_route(SETTINGS, identified=False, flags=("fallback",))
    assert unknown.flags == ("fallback", "unidentified") and not unknown.identified


def test_enqueue_and_redirect_defaults_pass_through() -> None:
    queue = RoutingSettings(Destination.parse("enqueue:housing"), "+441332000999")
    web = RoutingSettings(
        Destination.parse("redirect:https://cc.example.org/voice"), "+441332000999"
    )
    assert str(decide(caller(), TUESDAY_10_30_BST, queue).destination) == "enqueue:housing"
    assert (
        str(decide(None, TUESDAY_10_30_BST, web).destination)
        == "redirect:https://cc.example.org/voice"
    )


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        decide(None, datetime(2026, 6, 2, 10, 30), SETTINGS)


# --- the Redis cache's JSON round trip -----------------------------------------------------------


def test_caller_profile_survives_the_cache_round_trip_through_json_text() -> None:
    profile = CallerProfile(
        7,
        "HMS-7",
        "Pat",
        "cy-GB",
        True,
        (
            restriction("limited_contact", 1, windows=WINDOWS, max_calls_per_week=2),
            restriction("warning", 2, appeal=True),
            restriction("spoc", 3, spoc="client:jsmith"),
        ),
    )
    text = json.dumps(profile.to_json())
    assert CallerProfile.from_json(json.loads(text)) == profile


def test_a_cached_decision_time_without_an_offset_is_read_as_utc() -> None:
    data = caller(restriction("warning")).to_json()
    data["restrictions"][0]["decided_at"] = "2026-03-01T23:30:00"
    restored = CallerProfile.from_json(data)
    assert restored.restrictions[0].decided_at == DECIDED
