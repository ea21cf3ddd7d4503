"""The routing decision as a pure function: restrictions + time + settings → a Route."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from restrictions.routing import (
    ActiveRestriction,
    CallerProfile,
    RestrictionKind,
    RouteKind,
    RoutingSettings,
    decide,
    needs_weekly_count,
    week_start,
)

SETTINGS = RoutingSettings(default_route="dial:+441332000100", emergency_line="+441332000999")
DECIDED = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # 23:30 GMT: still 1 March locally
TUESDAY_10_30_BST = datetime(2026, 6, 2, 9, 30, tzinfo=UTC)
WINDOWS = [{"days": ["tue"], "start": "10:00", "end": "12:00"}]


def restriction(
    kind: str, rid: int = 1, appeal: bool = False, **details: object
) -> ActiveRestriction:
    return ActiveRestriction(rid, RestrictionKind(kind), details, DECIDED, appeal)


def caller(*restrictions: ActiveRestriction) -> CallerProfile:
    return CallerProfile(7, "HMS-7", "Pat", "en-GB", False, restrictions)


def test_unknown_caller_takes_the_default_route_unidentified() -> None:
    route = decide(None, TUESDAY_10_30_BST, SETTINGS)
    assert route.kind is RouteKind.DEFAULT and not route.identified
    assert route.destination == "dial:+441332000100" and "unidentified" in route.flags


def test_no_restrictions_default_route_identified() -> None:
    route = decide(caller(), TUESDAY_10_30_BST, SETTINGS)
    assert route.kind is RouteKind.DEFAULT and route.identified and route.flags == ()


def test_warning_flag_carries_its_local_date() -> None:
    route = decide(caller(restriction("warning")), TUESDAY_10_30_BST, SETTINGS)
    assert route.kind is RouteKind.DEFAULT
    assert route.flags == ("warning:2026-03-01",)


def test_spoc_number_and_spoc_user() -> None:
    by_number = decide(
        caller(restriction("spoc", spoc="+441332000555")), TUESDAY_10_30_BST, SETTINGS
    )
    assert (by_number.kind, by_number.destination) == (RouteKind.SPOC, "dial:+441332000555")
    by_user = decide(caller(restriction("spoc", spoc="client:jo")), TUESDAY_10_30_BST, SETTINGS)
    assert by_user.destination == "client:jo"


def test_written_only_ends_the_call_with_its_message() -> None:
    route = decide(caller(restriction("written_only", rid=4)), TUESDAY_10_30_BST, SETTINGS)
    assert route.kind is RouteKind.WRITTEN_ONLY and route.ends_call
    assert route.message == "written_only" and route.restriction_id == 4


def test_representative_only_names_the_representative() -> None:
    r = restriction("representative_only", representative="Derby Advocacy")
    route = decide(caller(r), TUESDAY_10_30_BST, SETTINGS)
    assert route.kind is RouteKind.REPRESENTATIVE_ONLY
    assert route.message_params["representative"] == "Derby Advocacy"


def test_no_engagement_flags_the_issue() -> None:
    route = decide(caller(restriction("no_engagement", issue="fence")), TUESDAY_10_30_BST, SETTINGS)
    assert route.kind is RouteKind.DEFAULT and route.flags == ("no_engagement:fence",)


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (datetime(2026, 6, 2, 8, 59, 59, tzinfo=UTC), False),  # 09:59:59 BST
        (datetime(2026, 6, 2, 9, 0, 0, tzinfo=UTC), True),  # 10:00 BST (start inclusive)
        (datetime(2026, 6, 2, 10, 59, 59, tzinfo=UTC), True),  # 11:59:59 BST
        (datetime(2026, 6, 2, 11, 0, 0, tzinfo=UTC), False),  # 12:00 BST (end exclusive)
        (datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC), True),  # 10:00 GMT in winter
        (datetime(2026, 12, 1, 9, 59, 59, tzinfo=UTC), False),
    ],
)
def test_limited_contact_windows_are_london_wall_clock(moment: datetime, inside: bool) -> None:
    route = decide(caller(restriction("limited_contact", windows=WINDOWS)), moment, SETTINGS)
    assert (route.kind is RouteKind.DEFAULT) is inside
    if not inside:
        assert route.kind is RouteKind.OUTSIDE_WINDOW and route.message_params["windows"] == WINDOWS


def test_weekly_allowance_at_max_minus_one_and_at_max() -> None:
    limited = restriction("limited_contact", windows=WINDOWS, max_calls_per_week=3)
    assert needs_weekly_count(caller(limited))
    assert decide(caller(limited), TUESDAY_10_30_BST, SETTINGS, 2).kind is RouteKind.DEFAULT
    used = decide(caller(limited), TUESDAY_10_30_BST, SETTINGS, 3)
    assert used.kind is RouteKind.ALLOWANCE_USED and used.message_params["max_calls"] == 3


def test_no_weekly_count_needed_without_a_cap() -> None:
    assert not needs_weekly_count(caller(restriction("limited_contact", windows=WINDOWS)))
    assert not needs_weekly_count(None)


def test_precedence_most_restrictive_first() -> None:
    everything = caller(
        restriction("warning", 1),
        restriction("spoc", 2, spoc="+441332000555"),
        restriction("limited_contact", 3, windows=WINDOWS),
        restriction("written_only", 4),
        restriction("representative_only", 5, representative="R"),
    )
    assert decide(everything, TUESDAY_10_30_BST, SETTINGS).kind is RouteKind.REPRESENTATIVE_ONLY
    no_rep = caller(*[r for r in everything.restrictions if r.id != 5])
    assert decide(no_rep, TUESDAY_10_30_BST, SETTINGS).kind is RouteKind.WRITTEN_ONLY
    spoc_and_limited = caller(
        restriction("spoc", 2, spoc="+441332000555"),
        restriction("limited_contact", 3, windows=WINDOWS),
    )
    outside = datetime(2026, 6, 3, 9, 30, tzinfo=UTC)
    assert decide(spoc_and_limited, outside, SETTINGS).kind is RouteKind.OUTSIDE_WINDOW
    assert decide(spoc_and_limited, TUESDAY_10_30_BST, SETTINGS).kind is RouteKind.SPOC


def test_flags_of_every_restriction_travel_with_the_winning_route() -> None:
    route = decide(
        caller(restriction("warning", 1), restriction("spoc", 2, spoc="+441332000555")),
        TUESDAY_10_30_BST,
        SETTINGS,
    )
    assert route.kind is RouteKind.SPOC
    assert "warning:2026-03-01" in route.flags and "spoc" in route.flags


def test_under_appeal_still_applies_and_is_flagged() -> None:
    route = decide(caller(restriction("written_only", appeal=True)), TUESDAY_10_30_BST, SETTINGS)
    assert route.kind is RouteKind.WRITTEN_ONLY and "under_appeal" in route.flags


def test_week_starts_monday_midnight_london_across_the_clocks_changing() -> None:
    # Sunday 29 March 2026 the clocks go forward; the week began Monday 23 March 00:00 GMT
    assert week_start(datetime(2026, 3, 29, 12, tzinfo=UTC)) == datetime(2026, 3, 23, 0, tzinfo=UTC)
    # Monday 30 March 00:30 BST is 29 March 23:30 UTC, already the new week
    assert week_start(datetime(2026, 3, 29, 23, 30, tzinfo=UTC)) == datetime(
        2026, 3, 29, 23, 0, tzinfo=UTC
    )


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError):
        decide(None, datetime(2026, 6, 2, 10, 30), SETTINGS)


def test_caller_profile_survives_the_cache_round_trip() -> None:
    profile = caller(
        restriction("limited_contact", windows=WINDOWS, max_calls_per_week=2),
        restriction("warning", 2, appeal=True),
    )
    assert CallerProfile.from_json(profile.to_json()) == profile
