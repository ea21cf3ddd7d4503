"""The routing cache: each known number's caller profile in Redis, so a look-up is one GET.

PostgreSQL is the truth. An entry is rewritten only once a change to a customer or a restriction
has committed, a number a customer no longer has loses its entry, a number nobody owns can be
cached as a known unknown, the whole cache can be rebuilt from PostgreSQL, and a Redis outage
never fails the change that would have refreshed it (the fail-open policy).
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from typing import Any

import fakeredis
import pytest
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.orm import Session

from restrictions import cache, redis_keys
from restrictions.appeals import lodge_appeal
from restrictions.db import CACHE_REDIS
from restrictions.lifecycle import (
    Actor,
    add_restriction,
    create_customer,
    end_restriction,
    update_customer,
)
from restrictions.models import Customer, Restriction
from restrictions.routing import ActiveRestriction, CallerProfile

ACTOR = Actor(None, "test")
DECIDED = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
FIRST = "+447400200201"
SECOND = "+447400200202"
THIRD = "+447400200203"
NOBODYS = "+447400200299"

PROFILE = CallerProfile(
    customer_id=7,
    reference="HMS-7",
    name="Pat Example",
    language="cy-GB",
    slow_speech=True,
    restrictions=(
        ActiveRestriction(3, "spoc", {"spoc": "+441332000555"}, DECIDED, under_appeal=True),
        ActiveRestriction(
            4,
            "limited_contact",
            {
                "windows": [{"days": ["tue"], "start": "10:00", "end": "12:00"}],
                "max_calls_per_week": 2,
            },
            DECIDED,
        ),
    ),
)


def make_customer(
    sess: Session,
    reference: str = "CACHE-1",
    numbers: tuple[str, ...] = (FIRST, SECOND),
    **fields: Any,
) -> Customer:
    return create_customer(
        sess,
        ACTOR,
        reference=reference,
        name=fields.pop("name", "Pat Example"),
        phone_numbers=list(numbers),
        **fields,
    )


TODAY = datetime.now(UTC).date().isoformat()


def restrict(sess: Session, customer: Customer, kind: str, **details: Any) -> Restriction:
    """A restriction in force: its notice was sent today."""
    body = {"kind": kind, "reason": "Case review", "notice_sent_on": TODAY, **details}
    return add_restriction(sess, ACTOR, customer, body)


def cached(redis: fakeredis.FakeRedis, e164: str) -> CallerProfile:
    """The profile cached for a number, failing the test on a miss or a known unknown."""
    hit, profile = cache.read(redis, e164)
    assert hit, f"no cache entry for {e164}"
    assert profile is not None, f"{e164} is cached as nobody's"
    return profile


def down_redis() -> Redis:
    """A client for a Redis that is not there, failing at once (no retries)."""
    return Redis(port=1, retry=Retry(NoBackoff(), 0), socket_connect_timeout=0.5)


# --- reading and writing entries -----------------------------------------------------------------


def test_a_written_profile_reads_back_as_a_hit_with_the_same_fields(
    cache_redis: fakeredis.FakeRedis,
) -> None:
    assert cache.write_profiles(cache_redis, [(FIRST, PROFILE)]) == 1
    hit, profile = cache.read(cache_redis, FIRST)
    assert hit and profile is not None
    assert (profile.customer_id, profile.reference, profile.name) == (7, "HMS-7", "Pat Example")
    assert (profile.language, profile.slow_speech) == ("cy-GB", True)
    spoc, limited = profile.restrictions
    assert (spoc.id, spoc.kind, spoc.details, spoc.under_appeal) == (
        3,
        "spoc",
        {"spoc": "+441332000555"},
        True,
    )
    assert (limited.id, limited.kind, limited.under_appeal) == (4, "limited_contact", False)
    assert limited.details["max_calls_per_week"] == 2 and limited.decided_at == DECIDED
    assert profile == PROFILE


def test_an_entry_that_only_saves_a_read_expires_after_an_hour(
    cache_redis: fakeredis.FakeRedis,
) -> None:
    unrestricted = dataclasses.replace(PROFILE, restrictions=())
    cache.write_profiles(cache_redis, [(FIRST, unrestricted), (NOBODYS, None)])
    for number in (FIRST, NOBODYS):
        assert 0 < cache_redis.ttl(cache.key(number)) <= cache.TTL_SECONDS == 3600


def test_an_entry_that_protects_the_line_outlives_the_hourly_rewrite(
    cache_redis: fakeredis.FakeRedis,
) -> None:
    cache.write_profiles(cache_redis, [(FIRST, PROFILE)])
    ttl = cache_redis.ttl(cache.key(FIRST))
    assert cache.WARM_SECONDS < ttl <= cache.RESTRICTED_TTL_SECONDS


def test_a_number_cached_as_nobodys_is_a_hit_with_no_profile(
    cache_redis: fakeredis.FakeRedis,
) -> None:
    cache.write_profiles(cache_redis, [(NOBODYS, None)])
    assert cache_redis.get(cache.key(NOBODYS)) == b"=null"  # decides the route on its own
    assert cache.read(cache_redis, NOBODYS) == (True, None)  # a known unknown caller


def test_an_entry_says_whether_it_decides_the_route_alone_or_needs_the_weekly_count(
    cache_redis: fakeredis.FakeRedis,
) -> None:
    limited = CallerProfile(
        1,
        "R-1",
        "Pat",
        "en-GB",
        False,
        (
            ActiveRestriction(
                7, "limited_contact", {"max_calls_per_week": 2}, datetime(2026, 1, 5, tzinfo=UTC)
            ),
        ),
    )
    cache.write_profiles(cache_redis, [("+447400200001", limited), (NOBODYS, None)])
    counted = cache_redis.get(cache.key("+447400200001"))
    assert isinstance(counted, bytes) and counted.startswith(b"+")
    assert not cache.decides_alone(counted)
    assert cache.decides_alone(cache_redis.get(cache.key(NOBODYS)) or b"")
    assert cache.read(cache_redis, "+447400200001") == (True, limited)
    cache_redis.set(cache.key(NOBODYS), "null")  # written before entries had their mark
    assert cache.read(cache_redis, NOBODYS) == (True, None)
    assert not cache.decides_alone(b"null")


def test_a_number_with_no_entry_is_a_miss(cache_redis: fakeredis.FakeRedis) -> None:
    cache.write_profiles(cache_redis, [(FIRST, PROFILE), (NOBODYS, None)])
    assert cache.read(cache_redis, SECOND) == (False, None)
    assert cache.read(cache_redis, FIRST)[0] and cache.read(cache_redis, NOBODYS)[0]


def test_stale_numbers_lose_their_entries_and_the_rest_are_written(
    cache_redis: fakeredis.FakeRedis,
) -> None:
    cache.write_profiles(cache_redis, [(FIRST, PROFILE), (SECOND, PROFILE), (THIRD, None)])
    written = cache.write_profiles(cache_redis, [(FIRST, PROFILE)], stale_numbers=[SECOND, THIRD])
    assert written == 1
    assert cache.read(cache_redis, SECOND) == (False, None)
    assert cache.read(cache_redis, THIRD) == (False, None)
    assert cached(cache_redis, FIRST) == PROFILE


def test_many_entries_are_all_written_across_pipeline_chunks(
    cache_redis: fakeredis.FakeRedis,
) -> None:
    numbers = [f"+4474003{n:05d}" for n in range(cache.CHUNK * 2 + 1)]
    assert cache.write_profiles(cache_redis, ((n, PROFILE) for n in numbers)) == len(numbers)
    assert cache_redis.dbsize() == len(numbers)
    assert cached(cache_redis, numbers[0]) == cached(cache_redis, numbers[-1]) == PROFILE


# --- refreshed after a commit, and only after a commit -------------------------------------------


def test_creating_a_customer_caches_each_of_their_numbers_once_committed(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    pat = make_customer(sess, language="pl-PL", adjustments={"slow_speech": True})
    assert cache.read(cache_redis, FIRST) == (False, None)  # not before the commit
    sess.commit()
    for number in (FIRST, SECOND):
        profile = cached(cache_redis, number)
        assert (profile.customer_id, profile.reference, profile.name) == (
            pat.id,
            "CACHE-1",
            "Pat Example",
        )
        assert (profile.language, profile.slow_speech, profile.restrictions) == ("pl-PL", True, ())


def test_a_customer_rolled_back_is_never_cached(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    make_customer(sess)
    sess.rollback()
    assert cache.read(cache_redis, FIRST) == (False, None)
    assert cache.read(cache_redis, SECOND) == (False, None)
    # The refresh went with the rollback: the next commit does not run it.
    make_customer(sess, "CACHE-2", (THIRD,))
    sess.commit()
    assert cached(cache_redis, THIRD).reference == "CACHE-2"
    assert cache.read(cache_redis, FIRST) == (False, None)
    assert cache_redis.dbsize() == 1


def test_a_new_customer_replaces_a_known_unknown_entry_for_their_number(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    cache.write_profiles(cache_redis, [(FIRST, None)])
    pat = make_customer(sess)
    sess.commit()
    assert cached(cache_redis, FIRST).customer_id == pat.id


def test_a_restriction_added_appears_in_the_cached_profile(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    pat = make_customer(sess)
    sess.commit()
    written = restrict(sess, pat, "written_only")
    assert cached(cache_redis, FIRST).restrictions == ()
    sess.commit()
    for number in (FIRST, SECOND):
        (active,) = cached(cache_redis, number).restrictions
        assert (active.id, active.kind) == (written.id, "written_only")


def test_ending_a_restriction_removes_it_from_the_cached_profile(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    pat = make_customer(sess)
    written = restrict(sess, pat, "written_only")
    warning = restrict(sess, pat, "warning")
    sess.commit()
    assert {r.id for r in cached(cache_redis, FIRST).restrictions} == {written.id, warning.id}
    end_restriction(sess, ACTOR, written, "Behaviour improved at review")
    sess.commit()
    for number in (FIRST, SECOND):
        assert [r.id for r in cached(cache_redis, number).restrictions] == [warning.id]


def test_changing_a_customers_numbers_drops_the_old_numbers_entry(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    pat = make_customer(sess)
    sess.commit()
    assert cached(cache_redis, SECOND).customer_id == pat.id
    assert update_customer(sess, ACTOR, pat, name="Pat Jones", phone_numbers=[FIRST, THIRD])
    sess.commit()
    assert cache.read(cache_redis, SECOND) == (False, None)
    assert (cached(cache_redis, FIRST).name, cached(cache_redis, THIRD).name) == (
        "Pat Jones",
        "Pat Jones",
    )
    assert cached(cache_redis, THIRD).customer_id == pat.id


def test_a_rolled_back_change_of_numbers_leaves_the_old_entries_in_place(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    pat = make_customer(sess)
    sess.commit()
    update_customer(sess, ACTOR, pat, phone_numbers=[FIRST])
    sess.rollback()
    make_customer(sess, "CACHE-2", (THIRD,))
    sess.commit()  # runs only this commit's refresh, not the rolled-back one's
    assert cached(cache_redis, SECOND).customer_id == pat.id


def test_an_appeal_lodged_shows_in_the_cached_profile(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    pat = make_customer(sess)
    written = restrict(sess, pat, "written_only")
    sess.commit()
    assert not cached(cache_redis, FIRST).restrictions[0].under_appeal
    assert written.notice_sent_on is not None
    lodge_appeal(sess, ACTOR, written, {"grounds": "Unfair"}, today=written.notice_sent_on)
    sess.commit()
    (appealed,) = cached(cache_redis, FIRST).restrictions
    assert (appealed.id, appealed.under_appeal) == (written.id, True)


# --- reading PostgreSQL on a miss ----------------------------------------------------------------


def test_load_profile_returns_only_the_restrictions_in_force(sess: Session) -> None:
    pat = make_customer(sess, adjustments={"slow_speech": True})
    ended = restrict(sess, pat, "written_only")
    spoc = restrict(sess, pat, "spoc", spoc="+441332000555")
    sess.commit()
    end_restriction(sess, ACTOR, ended, "Overturned on appeal")
    sess.commit()
    profile = cache.load_profile(sess, SECOND)
    assert profile is not None
    assert (profile.customer_id, profile.reference, profile.slow_speech) == (
        pat.id,
        "CACHE-1",
        True,
    )
    (active,) = profile.restrictions
    assert (active.id, active.kind, active.details) == (spoc.id, "spoc", {"spoc": "+441332000555"})


def test_load_profile_from_a_fresh_session_also_leaves_out_ended_restrictions(
    sess: Session,
) -> None:
    pat = make_customer(sess)
    ended = restrict(sess, pat, "written_only")
    warning = restrict(sess, pat, "warning")
    end_restriction(sess, ACTOR, ended, "Overturned on appeal")
    sess.commit()
    with Session(sess.get_bind()) as fresh:
        profile = cache.load_profile(fresh, FIRST)
    assert profile is not None and [r.id for r in profile.restrictions] == [warning.id]


def test_load_profile_leaves_out_ended_restrictions_the_session_has_already_loaded(
    sess: Session,
) -> None:
    pat = make_customer(sess)
    ended = restrict(sess, pat, "written_only")
    warning = restrict(sess, pat, "warning")
    end_restriction(sess, ACTOR, ended, "Overturned on appeal")
    sess.commit()
    assert {r.id for r in pat.restrictions} == {ended.id, warning.id}  # all of them, loaded
    profile = cache.load_profile(sess, FIRST)
    assert profile is not None and [r.id for r in profile.restrictions] == [warning.id]
    assert [r.id for r in cache.profile_of(pat).restrictions] == [warning.id]


def test_load_profile_of_a_number_nobody_owns_is_none(sess: Session) -> None:
    make_customer(sess)
    sess.commit()
    assert cache.load_profile(sess, NOBODYS) is None
    assert cache.load_profile(sess, FIRST) is not None


# --- rebuilding the whole cache ------------------------------------------------------------------


def test_rebuild_writes_one_entry_per_known_number_and_drops_the_rest(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    # The test database may hold other tests' committed customers: count against what was there.
    already = cache.rebuild(sess, fakeredis.FakeRedis())
    pat = make_customer(sess)
    sam = make_customer(sess, "CACHE-2", (THIRD,), name="Sam Example")
    warning = restrict(sess, sam, "warning")
    sess.commit()
    cache_redis.delete(cache.key(SECOND))  # an entry lost (expired, evicted)
    cache.write_profiles(cache_redis, [(NOBODYS, PROFILE), ("+447400200298", None)])
    cache_redis.set(redis_keys.COUNT_CALLS.of("customer:7"), "kept")  # not the routing cache's

    assert cache.rebuild(sess, cache_redis) == already + 3

    assert cached(cache_redis, FIRST).customer_id == cached(cache_redis, SECOND).customer_id
    assert cached(cache_redis, SECOND).customer_id == pat.id
    assert [r.id for r in cached(cache_redis, THIRD).restrictions] == [warning.id]
    assert cache.read(cache_redis, NOBODYS) == (False, None)  # nobody owns it any more
    assert cache.read(cache_redis, "+447400200298") == (False, None)
    assert len(list(cache_redis.scan_iter(match=cache.PREFIX + "*"))) == already + 3
    assert cache_redis.get(redis_keys.COUNT_CALLS.of("customer:7")) == b"kept"


# --- Redis down: the change still commits (fail open) --------------------------------------------


def test_refresh_customers_returns_nothing_written_when_redis_is_down(
    sess: Session, caplog: pytest.LogCaptureFixture
) -> None:
    pat = make_customer(sess)
    sess.commit()
    with caplog.at_level(logging.ERROR, logger="callguard.resilience"):
        written = cache.refresh_customers(sess.get_bind(), down_redis(), [pat.id], [THIRD])
    assert written == 0
    assert "redis unavailable in refresh_customers" in caplog.text


def test_refresh_customers_writes_each_number_when_redis_is_up(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    pat = make_customer(sess)
    sess.commit()
    cache_redis.flushall()
    assert cache.refresh_customers(sess.get_bind(), cache_redis, [pat.id]) == 2
    assert cached(cache_redis, FIRST).customer_id == cached(cache_redis, SECOND).customer_id


def test_a_change_commits_even_when_the_cache_cannot_be_refreshed(sess: Session) -> None:
    sess.info[CACHE_REDIS] = down_redis()
    pat = make_customer(sess)
    sess.commit()  # the refresh after the commit fails open
    assert cache.load_profile(sess, FIRST) is not None
    assert sess.get(Customer, pat.id) is not None
