"""Contact counting (policy section 6): per-subject sliding windows of calls and talk time in Redis.

A subject is a customer across all their numbers, or a number when the caller is not a customer;
a withheld caller has nothing to count against. Counting is keyed on the CallSid, so a call
counted twice counts once. Limited contact's weekly allowance (policy 10.1) is counted the same
way, with PostgreSQL's call rows as the backstop, and every counter can be rebuilt from
PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import fakeredis
import pytest
from sqlalchemy.orm import Session

from restrictions import counting
from restrictions.cache import key as cache_key
from restrictions.counting import (
    KEEP_SECONDS,
    WindowStats,
    allowance_used,
    allowance_used_from_calls,
    count_call,
    note_allowance,
    subject_of,
    window,
)
from restrictions.models import Call, Customer

END = datetime(2026, 6, 2, 12, 0, tzinfo=UTC)
HOUR = 60
SUBJECT = "customer:7"
NUMBER = "+447400200101"
OTHER_NUMBER = "+447400200102"


def sid(n: int) -> str:
    return f"CA{n:032x}"


def customer(sess: Session, reference: str) -> Customer:
    """A customer row for call rows to point at (no numbers, no cache: counting needs neither)."""
    row = Customer(reference=reference, name="Pat Example")
    sess.add(row)
    sess.flush()
    return row


def call(
    n: int,
    started_at: datetime,
    *,
    customer_id: int | None = None,
    from_e164: str | None = NUMBER,
    route: str = "default",
    seconds: int | None = 60,
    counted: bool = True,
    answered: bool | None = None,
) -> Call:
    """A finished call; it reached a person (``answered``) by default when its route put it
    through."""
    reached = route in ("default", "spoc") if answered is None else answered
    return Call(
        call_sid=sid(n),
        from_number=from_e164 or "anonymous",
        from_e164=from_e164,
        customer_id=customer_id,
        identified=customer_id is not None,
        route=route,
        status="completed",
        started_at=started_at,
        duration_seconds=seconds,
        counted_at=started_at + timedelta(minutes=5) if counted else None,
        answered_at=started_at + timedelta(seconds=10) if reached else None,
    )


# --- subjects ------------------------------------------------------------------------------------


def test_a_customer_is_counted_across_all_their_numbers() -> None:
    assert subject_of(42, NUMBER) == "customer:42"
    assert subject_of(42, OTHER_NUMBER) == subject_of(42, NUMBER)
    assert subject_of(42, None) == "customer:42"


def test_a_caller_who_is_not_a_customer_is_counted_by_their_number() -> None:
    assert subject_of(None, NUMBER) == f"number:{NUMBER}"
    assert subject_of(None, NUMBER) != subject_of(None, OTHER_NUMBER)


@pytest.mark.parametrize("withheld", [None, ""])
def test_a_withheld_caller_has_nothing_to_count_against(withheld: str | None) -> None:
    assert subject_of(None, withheld) is None


# --- counting a call is idempotent on its CallSid ------------------------------------------------


def test_counting_the_same_call_twice_counts_it_once(cache_redis: fakeredis.FakeRedis) -> None:
    count_call(cache_redis, SUBJECT, sid(1), END, 90)
    count_call(cache_redis, SUBJECT, sid(1), END, 90)
    assert window(cache_redis, SUBJECT, END, HOUR) == WindowStats(1, 90, (sid(1),))


def test_recounting_a_call_replaces_its_talk_time_rather_than_adding_to_it(
    cache_redis: fakeredis.FakeRedis,
) -> None:
    count_call(cache_redis, SUBJECT, sid(1), END, 90)
    count_call(cache_redis, SUBJECT, sid(1), END, 120)
    stats = window(cache_redis, SUBJECT, END, HOUR)
    assert (stats.calls, stats.seconds) == (1, 120)


def test_different_calls_are_each_counted_and_their_talk_time_summed(
    cache_redis: fakeredis.FakeRedis,
) -> None:
    count_call(cache_redis, SUBJECT, sid(1), END - timedelta(minutes=30), 90)
    count_call(cache_redis, SUBJECT, sid(2), END - timedelta(minutes=10), 45)
    count_call(cache_redis, SUBJECT, sid(3), END, 0)
    stats = window(cache_redis, SUBJECT, END, HOUR)
    assert (stats.calls, stats.seconds) == (3, 135)
    assert set(stats.call_sids) == {sid(1), sid(2), sid(3)}


def test_one_subjects_calls_do_not_count_against_another(
    cache_redis: fakeredis.FakeRedis,
) -> None:
    count_call(cache_redis, "customer:7", sid(1), END, 90)
    count_call(cache_redis, f"number:{NUMBER}", sid(2), END, 30)
    assert window(cache_redis, "customer:7", END, HOUR) == WindowStats(1, 90, (sid(1),))
    assert window(cache_redis, f"number:{NUMBER}", END, HOUR) == WindowStats(1, 30, (sid(2),))
    assert window(cache_redis, "customer:8", END, HOUR) == WindowStats(0, 0, ())


def test_counters_are_kept_for_eight_days_then_expire(cache_redis: fakeredis.FakeRedis) -> None:
    count_call(cache_redis, SUBJECT, sid(1), END, 90)
    for prefix in (counting.CALLS, counting.TALK):
        assert 0 < cache_redis.ttl(prefix + SUBJECT) <= KEEP_SECONDS
    assert KEEP_SECONDS > 7 * 24 * 3600  # outlives the longest (weekly) window
    count_call(cache_redis, "customer:8", sid(2), END, 90, keep_seconds=60)
    assert 0 < cache_redis.ttl(counting.CALLS + "customer:8") <= 60


# --- the window: calls that started in (end - minutes, end] -----------------------------------


@pytest.mark.parametrize(
    "end",
    [END, END.replace(microsecond=250_000)],
    ids=["on-the-second", "with-microseconds"],
)
def test_a_window_excludes_a_call_exactly_at_its_start_and_includes_one_exactly_at_its_end(
    cache_redis: fakeredis.FakeRedis, end: datetime
) -> None:
    start = end - timedelta(minutes=HOUR)
    count_call(cache_redis, SUBJECT, sid(1), start - timedelta(seconds=1), 1)
    count_call(cache_redis, SUBJECT, sid(2), start, 10)  # at the start: out
    count_call(cache_redis, SUBJECT, sid(3), start + timedelta(seconds=1), 100)
    count_call(cache_redis, SUBJECT, sid(4), end, 1000)  # at the end: in
    count_call(cache_redis, SUBJECT, sid(5), end + timedelta(seconds=1), 10000)
    stats = window(cache_redis, SUBJECT, end, HOUR)
    assert stats.calls == 2 and stats.seconds == 1100
    assert stats.call_sids == (sid(3), sid(4))  # oldest first


def test_a_window_sums_the_talk_time_of_only_the_calls_inside_it(
    cache_redis: fakeredis.FakeRedis,
) -> None:
    day = 24 * HOUR
    count_call(cache_redis, SUBJECT, sid(1), END - timedelta(hours=2), 600)
    count_call(cache_redis, SUBJECT, sid(2), END - timedelta(minutes=20), 300)
    count_call(cache_redis, SUBJECT, sid(3), END - timedelta(days=2), 1200)
    assert window(cache_redis, SUBJECT, END, HOUR) == WindowStats(1, 300, (sid(2),))
    assert window(cache_redis, SUBJECT, END, day) == WindowStats(2, 900, (sid(1), sid(2)))
    week = window(cache_redis, SUBJECT, END, 7 * day)
    assert (week.calls, week.seconds) == (3, 2100)


def test_a_window_ending_earlier_does_not_see_later_calls(
    cache_redis: fakeredis.FakeRedis,
) -> None:
    count_call(cache_redis, SUBJECT, sid(1), END - timedelta(minutes=50), 60)
    count_call(cache_redis, SUBJECT, sid(2), END, 60)
    earlier = window(cache_redis, SUBJECT, END - timedelta(minutes=30), HOUR)
    assert earlier == WindowStats(1, 60, (sid(1),))


def test_a_call_with_no_talk_time_still_counts_as_a_call(
    cache_redis: fakeredis.FakeRedis,
) -> None:
    count_call(cache_redis, SUBJECT, sid(1), END, 0)
    assert window(cache_redis, SUBJECT, END, HOUR) == WindowStats(1, 0, (sid(1),))


# --- the weekly allowance (limited contact, policy 10.1) -----------------------------------------


def test_a_call_noted_against_the_allowance_twice_uses_it_once(
    cache_redis: fakeredis.FakeRedis,
) -> None:
    note_allowance(cache_redis, 7, sid(1), END)
    note_allowance(cache_redis, 7, sid(1), END)
    note_allowance(cache_redis, 7, sid(2), END + timedelta(hours=1))
    assert allowance_used(cache_redis, 7, END - timedelta(days=1)) == 2


def test_the_allowance_counts_calls_from_the_moment_given_inclusive(
    cache_redis: fakeredis.FakeRedis,
) -> None:
    since = END - timedelta(days=1)
    note_allowance(cache_redis, 7, sid(1), since - timedelta(seconds=1))  # last week
    note_allowance(cache_redis, 7, sid(2), since)  # exactly at the week's start
    note_allowance(cache_redis, 7, sid(3), END)
    assert allowance_used(cache_redis, 7, since) == 2
    assert allowance_used(cache_redis, 7, since - timedelta(seconds=1)) == 3
    assert allowance_used(cache_redis, 7, END + timedelta(seconds=1)) == 0


def test_each_customer_has_an_allowance_of_their_own(cache_redis: fakeredis.FakeRedis) -> None:
    note_allowance(cache_redis, 7, sid(1), END)
    note_allowance(cache_redis, 8, sid(2), END)
    note_allowance(cache_redis, 8, sid(3), END)
    since = END - timedelta(days=1)
    assert (allowance_used(cache_redis, 7, since), allowance_used(cache_redis, 8, since)) == (1, 2)
    assert 0 < cache_redis.ttl(counting.allowance_key(7)) <= KEEP_SECONDS


def test_the_allowance_from_call_rows_counts_only_calls_put_through_to_a_person(
    sess: Session,
) -> None:
    pat = customer(sess, "CNT-1")
    since = END - timedelta(days=1)
    routes = ["default", "spoc", "written_only", "outside_window", "allowance_used"]
    sess.add_all(call(n, END, customer_id=pat.id, route=r) for n, r in enumerate(routes))
    # put through, but nobody answered before the caller hung up: no allowance used
    sess.add(call(9, END, customer_id=pat.id, route="default", answered=False))
    sess.commit()
    assert allowance_used_from_calls(sess, pat.id, since) == 2


def test_the_allowance_from_call_rows_counts_from_the_moment_given_inclusive(
    sess: Session,
) -> None:
    pat, sam = customer(sess, "CNT-1"), customer(sess, "CNT-2")
    since = END - timedelta(days=1)
    sess.add_all(
        [
            call(1, since - timedelta(seconds=1), customer_id=pat.id),  # last week
            call(2, since, customer_id=pat.id, route="spoc"),
            call(3, END, customer_id=pat.id),
            call(4, END, customer_id=sam.id),  # another customer's call
            call(5, END, customer_id=None),  # a caller who is not a customer
        ]
    )
    sess.commit()
    assert allowance_used_from_calls(sess, pat.id, since) == 2
    assert allowance_used_from_calls(sess, sam.id, since) == 1
    assert allowance_used_from_calls(sess, pat.id, END + timedelta(seconds=1)) == 0


def test_the_allowance_from_call_rows_agrees_with_redis(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    pat = customer(sess, "CNT-1")
    since = END - timedelta(days=2)
    for n, (started, route) in enumerate(
        [(END - timedelta(days=3), "default"), (END, "default"), (END, "spoc"), (END, "spoc")]
    ):
        sess.add(call(n, started, customer_id=pat.id, route=route))
        note_allowance(cache_redis, pat.id, sid(n), started)
    sess.commit()
    assert allowance_used_from_calls(sess, pat.id, since) == 3
    assert allowance_used(cache_redis, pat.id, since) == 3


# --- rebuilding every counter from PostgreSQL ----------------------------------------------------


def test_rebuild_restores_the_counters_and_the_allowance_from_call_rows(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    # The test database may hold other tests' committed calls: count against what was there.
    already = counting.rebuild(sess, fakeredis.FakeRedis())
    now = datetime.now(UTC)  # rebuild keeps the last eight days of the real clock
    pat = customer(sess, "CNT-1")
    sess.add_all(
        [
            call(1, now - timedelta(hours=1), customer_id=pat.id, seconds=120),
            call(2, now - timedelta(days=2), customer_id=pat.id, route="written_only", seconds=5),
            call(3, now - timedelta(minutes=30), customer_id=pat.id, route="spoc", counted=False),
            call(4, now - timedelta(days=9), customer_id=pat.id, seconds=999),  # too old
            call(5, now - timedelta(minutes=10), from_e164=OTHER_NUMBER, seconds=30),
            call(6, now - timedelta(minutes=5), from_e164=None, seconds=40),  # withheld
            call(7, now - timedelta(minutes=1), customer_id=pat.id, seconds=None),
        ]
    )
    sess.commit()

    assert counting.rebuild(sess, cache_redis) == already + 4  # calls 1, 2, 5 and 7

    eight_days = 8 * 24 * HOUR
    pats = window(cache_redis, f"customer:{pat.id}", now, eight_days)
    assert set(pats.call_sids) == {sid(1), sid(2), sid(7)}  # 3 not yet counted, 4 too old
    assert pats.seconds == 125
    assert window(cache_redis, f"number:{OTHER_NUMBER}", now, eight_days) == WindowStats(
        1, 30, (sid(5),)
    )
    # calls 1, 3 and 7 reached a person; 2 was writing only, 4 is too old
    assert allowance_used(cache_redis, pat.id, now - timedelta(days=8)) == 3


def test_rebuild_empties_the_counters_it_finds_in_redis_first(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    now = datetime.now(UTC)
    pat = customer(sess, "CNT-1")
    sess.add(call(1, now - timedelta(hours=1), customer_id=pat.id, seconds=120))
    sess.commit()
    # Redis knows calls PostgreSQL does not (a lost database, a counter gone astray) ...
    count_call(cache_redis, f"customer:{pat.id}", sid(99), now, 3000)
    count_call(cache_redis, "number:+447400200199", sid(98), now, 60)
    note_allowance(cache_redis, pat.id, sid(99), now)
    note_allowance(cache_redis, 999_999_999, sid(97), now)
    # ... and one entry belongs to the routing cache, which the counters leave alone.
    cache_redis.set(cache_key(NUMBER), "null")

    counting.rebuild(sess, cache_redis)

    hour = window(cache_redis, f"customer:{pat.id}", now, 2 * HOUR)
    assert hour == WindowStats(1, 120, (sid(1),))
    assert cache_redis.exists(counting.CALLS + "number:+447400200199") == 0
    assert cache_redis.exists(counting.TALK + "number:+447400200199") == 0
    assert allowance_used(cache_redis, pat.id, now - timedelta(days=1)) == 1
    assert cache_redis.exists(counting.allowance_key(999_999_999)) == 0
    assert cache_redis.get(cache_key(NUMBER)) == b"null"


def test_rebuild_twice_gives_the_same_counters(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    now = datetime.now(UTC)
    pat = customer(sess, "CNT-1")
    sess.add_all(
        [
            call(1, now - timedelta(hours=1), customer_id=pat.id, seconds=120),
            call(2, now - timedelta(hours=2), customer_id=pat.id, seconds=60),
        ]
    )
    sess.commit()
    first = counting.rebuild(sess, cache_redis)
    assert counting.rebuild(sess, cache_redis) == first
    stats = window(cache_redis, f"customer:{pat.id}", now, 3 * HOUR)
    assert (stats.calls, stats.seconds) == (2, 180)
    assert allowance_used(cache_redis, pat.id, now - timedelta(hours=3)) == 2
