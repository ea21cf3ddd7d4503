"""Importing customers from the housing management system's CSV export, straight through the
domain: ``import_customers(sess, stream, actor)`` and the ImportReport it returns, then
``refresh_cache_for`` to bring the routing cache up to date.

Good rows become customers with E.164 numbers; a bad row is reported with its physical line number
(the header is line 1) and leaves nothing behind; a re-run updates by reference, audits only real
changes and names the numbers that left a customer so their cache entries go. The same import
driven end to end through ``callguard import customers`` is in tests/telephony/test_cli.py.
"""

from __future__ import annotations

import io
import json
from datetime import date
from typing import Any

import fakeredis
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from restrictions import cache
from restrictions.errors import DomainError
from restrictions.importing import ImportReport, import_customers, refresh_cache_for
from restrictions.lifecycle import Actor, add_restriction, create_customer
from restrictions.models import AuditEntry, Customer, PhoneNumber

HEADER = "reference,name,phone_numbers,language"
IMPORTER = Actor(None, "import:customers.csv")


def csv_text(*lines: str, header: str = HEADER, eol: str = "\n") -> io.StringIO:
    """A CSV export: the header on line 1, then each given line on the next physical line."""
    return io.StringIO("".join(f"{line}{eol}" for line in (header, *lines)))


def run(sess: Session, *lines: str) -> ImportReport:
    return import_customers(sess, csv_text(*lines), IMPORTER)


def count(sess: Session, model: type, *where: Any) -> int:
    return int(sess.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def find(sess: Session, reference: str) -> Customer | None:
    """The customer as PostgreSQL has it now (nothing left over in the session's memory)."""
    sess.expire_all()
    return sess.scalar(select(Customer).where(Customer.reference == reference))


def numbers_of(sess: Session, reference: str) -> list[str]:
    found = find(sess, reference)
    assert found is not None, f"no customer {reference}"
    return [n.e164 for n in found.numbers]


def audits(sess: Session, action: str) -> list[AuditEntry]:
    return list(sess.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def existing(sess: Session, reference: str, name: str, *numbers: str) -> Customer:
    """A customer already in callguard before the import (the cache left alone)."""
    made = create_customer(
        sess,
        Actor(None, "test"),
        reference=reference,
        name=name,
        phone_numbers=list(numbers),
        refresh_cache=False,
    )
    sess.commit()
    return made


# --- good rows ---------------------------------------------------------------------------------


def test_a_good_row_becomes_a_customer_with_each_of_its_numbers_in_e164(sess: Session) -> None:
    report = run(sess, "HMS-1,Ann Able,07400 100001;+44 1332 123456;(01332) 123457,cy-GB")
    assert (report.created, report.updated, report.unchanged, report.skipped) == (1, 0, 0, [])
    ann = find(sess, "HMS-1")
    assert ann is not None and (ann.name, ann.language) == ("Ann Able", "cy-GB")
    assert [n.e164 for n in ann.numbers] == ["+447400100001", "+441332123456", "+441332123457"]
    assert report.summary() == "imported 1, updated 0, unchanged 0, skipped 0"


def test_language_defaults_to_british_english_when_empty_or_left_off(sess: Session) -> None:
    report = run(sess, "HMS-1,Ann Able,07400100001,", "HMS-2,Bob Baker,07400100002")
    assert report.created == 2 and report.skipped == []
    for reference in ("HMS-1", "HMS-2"):
        found = find(sess, reference)
        assert found is not None and found.language == "en-GB"


def test_fields_are_trimmed_and_empty_or_repeated_numbers_in_a_row_are_dropped(
    sess: Session,
) -> None:
    report = run(sess, " HMS-1 , Ann Able ,07400 100001; ;+447400100001;01332 123456;, pl-PL ")
    assert report.created == 1 and report.skipped == []
    ann = find(sess, "HMS-1")
    assert ann is not None and (ann.name, ann.language) == ("Ann Able", "pl-PL")
    assert numbers_of(sess, "HMS-1") == ["+447400100001", "+441332123456"]


def test_the_header_may_be_spaced_reordered_and_carry_other_columns(sess: Session) -> None:
    stream = csv_text(
        "cy-GB,07400100001,Ann Able,HMS-1,T-99",
        header=" language , phone_numbers,name ,reference,tenancy",
    )
    report = import_customers(sess, stream, IMPORTER)
    assert report.created == 1 and report.skipped == []
    ann = find(sess, "HMS-1")
    assert ann is not None and (ann.name, ann.language) == ("Ann Able", "cy-GB")
    assert [n.e164 for n in ann.numbers] == ["+447400100001"]


def test_the_import_commits_what_it_lands_so_a_later_rollback_keeps_it(sess: Session) -> None:
    run(sess, "HMS-1,Ann Able,07400100001,", "HMS-2,,07400100002,")
    sess.rollback()
    assert set(sess.scalars(select(Customer.reference))) == {"HMS-1"}
    assert count(sess, AuditEntry, AuditEntry.action == "customer.created") == 1


def test_each_new_customer_is_audited_once_as_created_by_the_importer(sess: Session) -> None:
    run(sess, "HMS-1,Ann Able,07400100001;01332123456,", "HMS-2,Bob Baker,07400100002,")
    created = audits(sess, "customer.created")
    assert sorted((e.actor, e.actor_id) for e in created) == [
        ("import:customers.csv", None),
        ("import:customers.csv", None),
    ]
    ann = find(sess, "HMS-1")
    assert ann is not None
    (entry,) = [e for e in created if e.customer_id == ann.id]
    assert entry.after is not None and entry.after["phone_numbers"] == [
        "+447400100001",
        "+441332123456",
    ]
    assert count(sess, AuditEntry) == 2


# --- the header --------------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["reference", "name", "phone_numbers", "language"])
def test_a_header_without_a_column_is_refused_naming_it(sess: Session, column: str) -> None:
    header = ",".join(c for c in HEADER.split(",") if c != column)
    with pytest.raises(DomainError) as refused:
        import_customers(sess, csv_text("HMS-1,Ann Able,07400100001", header=header), IMPORTER)
    assert refused.value.message.endswith(f"missing {column}")
    assert count(sess, Customer) == 0 and count(sess, AuditEntry) == 0


def test_an_empty_file_is_refused_naming_every_column(sess: Session) -> None:
    with pytest.raises(DomainError, match="missing reference, name, phone_numbers, language$"):
        import_customers(sess, io.StringIO(""), IMPORTER)


# --- bad rows ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("HMS-9,,07400100009,en-GB", "name is required"),
        ("HMS-9,   ,07400100009,en-GB", "name is required"),
        (",Ivy Ince,07400100009,en-GB", "reference is required"),
        ("HMS-9,Ivy Ince,12345,en-GB", "'12345' is not a valid phone number"),
        ("HMS-9,Ivy Ince,call me,en-GB", "'call me' is not a phone number"),
        ("HMS-9,Ivy Ince,07400100009;12345,en-GB", "'12345' is not a valid phone number"),
        ("HMS-9,Ivy Ince,07400100009,fr-FR", "language must be one of"),
        ("HMS-9,Ivy Ince,,en-GB", "phone_numbers is empty"),
        ("HMS-9,Ivy Ince, ; ,en-GB", "phone_numbers is empty"),
    ],
)
def test_a_bad_row_is_skipped_with_its_line_and_reason_and_leaves_nothing(
    sess: Session, row: str, reason: str
) -> None:
    report = run(sess, "HMS-1,Ann Able,07400100001,", row, "HMS-2,Bob Baker,07400100002,")
    assert [line for line, _ in report.skipped] == [3]
    assert reason in report.skipped[0][1]
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert set(sess.scalars(select(Customer.reference))) == {"HMS-1", "HMS-2"}
    assert count(sess, PhoneNumber, PhoneNumber.e164 == "+447400100009") == 0
    assert count(sess, AuditEntry) == 2


def test_the_unknown_language_is_named_with_the_ones_there_are(sess: Session) -> None:
    report = run(sess, "HMS-1,Ann Able,07400100001,fr-FR")
    ((line, reason),) = report.skipped
    assert line == 2 and "'fr-FR'" in reason and "en-GB" in reason and "cy-GB" in reason


@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["unix", "windows"])
def test_line_numbers_count_the_header_and_blank_lines(sess: Session, eol: str) -> None:
    stream = csv_text(
        "HMS-1,Ann Able,07400100001,",  # line 2
        "",  # line 3
        "HMS-2,,07400100002,",  # line 4
        "HMS-3,Cat Cole,07400100003,",  # line 5
        "",  # line 6
        "",  # line 7
        "HMS-4,Dan Dale,12345,",  # line 8
        eol=eol,
    )
    report = import_customers(sess, stream, IMPORTER)
    assert [line for line, _ in report.skipped] == [4, 8]
    assert report.created == 2


def test_a_reference_repeated_in_the_file_is_a_bad_row_naming_the_first_line(
    sess: Session,
) -> None:
    report = run(
        sess,
        "HMS-1,Ann Able,07400100001,",
        "HMS-2,Bob Baker,07400100002,",
        "HMS-1,Ann Again,07400100003,cy-GB",
    )
    assert report.skipped == [(4, "reference HMS-1 is also on line 2")]
    ann = find(sess, "HMS-1")
    assert ann is not None and (ann.name, ann.language) == ("Ann Able", "en-GB")
    assert numbers_of(sess, "HMS-1") == ["+447400100001"]
    assert count(sess, PhoneNumber, PhoneNumber.e164 == "+447400100003") == 0
    assert count(sess, Customer) == 2 and count(sess, AuditEntry) == 2


def test_a_number_given_to_two_references_in_the_file_is_a_bad_row(sess: Session) -> None:
    report = run(
        sess,
        "HMS-1,Ann Able,+447400100001,",
        "HMS-2,Bob Baker,07400 100002;07400 100001,",
    )
    assert report.skipped == [(3, "+447400100001 is also given to HMS-1 on line 2")]
    assert find(sess, "HMS-2") is None
    assert count(sess, PhoneNumber, PhoneNumber.e164 == "+447400100002") == 0
    assert numbers_of(sess, "HMS-1") == ["+447400100001"]


def test_a_number_owned_by_an_existing_customer_is_a_bad_row(sess: Session) -> None:
    existing(sess, "OLD-1", "Olive Old", "+447400100001")
    audited = count(sess, AuditEntry)
    report = run(sess, "HMS-1,Ann Able,07400100002;07400 100001,")
    assert report.skipped == [(2, "phone number +447400100001 already belongs to customer OLD-1")]
    assert report.created == 0 and report.touched == []
    assert find(sess, "HMS-1") is None
    assert count(sess, PhoneNumber, PhoneNumber.e164 == "+447400100002") == 0
    assert numbers_of(sess, "OLD-1") == ["+447400100001"]
    assert count(sess, AuditEntry) == audited


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("HMS-1,Ann Renamed,07400100003;07400100002,cy-GB", "already belongs to customer OLD-2"),
        ("HMS-1,Ann Renamed,07400100003,xx-XX", "language must be one of"),
    ],
)
def test_a_bad_row_for_an_existing_customer_leaves_it_exactly_as_it_was(
    sess: Session, row: str, reason: str
) -> None:
    existing(sess, "HMS-1", "Ann Able", "+447400100001")
    existing(sess, "OLD-2", "Olive Old", "+447400100002")
    audited = count(sess, AuditEntry)
    report = run(sess, row, "HMS-3,Cat Cole,07400100004,")  # a good row commits after it
    assert [line for line, _ in report.skipped] == [2] and reason in report.skipped[0][1]
    assert (report.created, report.updated, report.stale_numbers) == (1, 0, [])
    ann = find(sess, "HMS-1")
    assert ann is not None and (ann.name, ann.language) == ("Ann Able", "en-GB")
    assert numbers_of(sess, "HMS-1") == ["+447400100001"]
    assert count(sess, PhoneNumber, PhoneNumber.e164 == "+447400100003") == 0
    assert audits(sess, "customer.updated") == []
    assert count(sess, AuditEntry) == audited + 1  # HMS-3's creation, nothing else


# --- re-running an import ----------------------------------------------------------------------

FIRST_RUN = (
    "HMS-1,Ann Able,07400 100001;01332 123456,",
    "HMS-2,Bob Baker,+447400100002,cy-GB",
    "HMS-3,Cat Cole,07400100003,en-GB",
)


def test_a_rerun_of_the_same_file_creates_nothing_audits_nothing_and_reports_unchanged(
    sess: Session,
) -> None:
    first = run(sess, *FIRST_RUN)
    assert first.created == 3
    before = (count(sess, Customer), count(sess, PhoneNumber), count(sess, AuditEntry))
    again = run(sess, *FIRST_RUN)
    assert (again.created, again.updated, again.unchanged, again.skipped) == (0, 0, 3, [])
    assert again.summary() == "imported 0, updated 0, unchanged 3, skipped 0"
    assert (count(sess, Customer), count(sess, PhoneNumber), count(sess, AuditEntry)) == before
    assert again.touched == first.touched and again.stale_numbers == []


def test_a_rerun_with_a_changed_name_updates_the_customer_and_audits_it_once(
    sess: Session,
) -> None:
    first = run(sess, *FIRST_RUN)
    audited = count(sess, AuditEntry)
    changed = ("HMS-1,Ann Able-Smith,07400 100001;01332 123456,", *FIRST_RUN[1:])
    report = run(sess, *changed)
    assert (report.created, report.updated, report.unchanged) == (0, 1, 2)
    ann = find(sess, "HMS-1")
    assert ann is not None and ann.name == "Ann Able-Smith" and ann.id == first.touched[0]
    (entry,) = audits(sess, "customer.updated")
    assert entry.customer_id == ann.id and entry.actor == "import:customers.csv"
    assert entry.before is not None and entry.before["name"] == "Ann Able"
    assert entry.after is not None and entry.after["name"] == "Ann Able-Smith"
    assert count(sess, AuditEntry) == audited + 1
    assert report.stale_numbers == [] and count(sess, Customer) == 3


def test_an_update_audits_only_the_typed_adjustments_never_old_free_text(
    sess: Session,
) -> None:
    """A customer whose adjustments were written before they were typed (free text about their
    health among them): the import's audit entry holds the typed ones staff may see, and not
    one word of the free text, which only supervisors may read (as the sensitive note)."""
    run(sess, *FIRST_RUN)
    ann = find(sess, "HMS-1")
    assert ann is not None
    ann.adjustments = {"large_print": True, "health": "PTSD after the fire; avoid raised voices"}
    sess.commit()
    run(sess, "HMS-1,Ann Able-Smith,07400 100001;01332 123456,", *FIRST_RUN[1:])
    (entry,) = audits(sess, "customer.updated")
    assert entry.before is not None and entry.after is not None
    assert entry.before["adjustments"]["large_print"] is True
    assert entry.after["adjustments"]["large_print"] is True
    assert "PTSD" not in json.dumps([entry.before, entry.after, entry.note])


def test_a_rerun_with_changed_numbers_reports_the_removed_ones_as_stale(sess: Session) -> None:
    run(sess, *FIRST_RUN)
    report = run(
        sess,
        "HMS-1,Ann Able,01332 123456;07400 100011,",
        "HMS-2,Bob Baker,07400100012,cy-GB",
        "HMS-3,Cat Cole,07400100003,en-GB",
    )
    assert (report.updated, report.unchanged) == (2, 1)
    assert sorted(report.stale_numbers) == ["+447400100001", "+447400100002"]
    assert numbers_of(sess, "HMS-1") == ["+441332123456", "+447400100011"]
    assert numbers_of(sess, "HMS-2") == ["+447400100012"]
    gone = PhoneNumber.e164.in_(["+447400100001", "+447400100002"])
    assert count(sess, PhoneNumber, gone) == 0
    ann = find(sess, "HMS-1")
    assert ann is not None
    (entry,) = [e for e in audits(sess, "customer.updated") if e.customer_id == ann.id]
    assert entry.after is not None
    assert entry.after["phone_numbers"] == ["+441332123456", "+447400100011"]


def test_a_number_may_pass_from_one_customer_to_a_later_row_in_the_same_run(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    existing(sess, "HMS-1", "Ann Able", "+447400100001", "+447400100002")
    report = run(sess, "HMS-1,Ann Able,07400100002,en-GB", "HMS-2,Bob Baker,07400100001,")
    assert (report.created, report.updated, report.skipped) == (1, 1, [])
    assert report.stale_numbers == ["+447400100001"]
    assert numbers_of(sess, "HMS-2") == ["+447400100001"]
    refresh_cache_for(sess, cache_redis, report.touched, report.stale_numbers)
    _, profile = cache.read(cache_redis, "+447400100001")
    assert profile is not None and profile.reference == "HMS-2"


# --- what the report tells its caller ----------------------------------------------------------


def test_touched_lists_every_imported_customer_in_file_order_but_no_skipped_one(
    sess: Session,
) -> None:
    bystander = existing(sess, "OLD-1", "Olive Old", "+447400100009")
    kept = existing(sess, "HMS-2", "Bob Baker", "+447400100002")
    renamed = existing(sess, "HMS-3", "Cat Cole", "+447400100003")
    report = run(
        sess,
        "HMS-1,Ann Able,07400100001,",  # created
        "HMS-2,Bob Baker,07400100002,",  # unchanged
        "HMS-9,,07400100008,",  # skipped
        "HMS-3,Cat Cole-Jones,07400100003,",  # updated
    )
    ann = find(sess, "HMS-1")
    assert ann is not None
    assert report.touched == [ann.id, kept.id, renamed.id]
    assert bystander.id not in report.touched
    assert (report.created, report.unchanged, report.updated, len(report.skipped)) == (1, 1, 1, 1)


def test_progress_is_called_once_per_data_row_good_or_bad(sess: Session) -> None:
    calls: list[int] = []
    stream = csv_text(
        "HMS-1,Ann Able,07400100001,",
        "HMS-2,,07400100002,",
        "HMS-3,Cat Cole,12345,",
        "HMS-4,Dan Dale,07400100004,",
        "HMS-5,Eve Evans,07400100005,",
    )
    report = import_customers(sess, stream, IMPORTER, progress=calls.append)
    assert calls == [1, 1, 1, 1, 1]
    assert report.created + len(report.skipped) == len(calls)


# --- the routing cache -------------------------------------------------------------------------


def test_refresh_cache_for_writes_one_entry_per_number_of_the_imported_customers(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    report = run(
        sess,
        "HMS-1,Ann Able,07400 100001;01332 123456,cy-GB",
        "HMS-2,Bob Baker,07400100002,",
        "HMS-3,,07400100003,",  # skipped: never cached
    )
    written = refresh_cache_for(sess, cache_redis, report.touched, report.stale_numbers)
    assert written == 3
    assert len(list(cache_redis.scan_iter(match=cache.PREFIX + "*"))) == 3
    ann = find(sess, "HMS-1")
    assert ann is not None
    for number in ("+447400100001", "+441332123456"):
        hit, profile = cache.read(cache_redis, number)
        assert hit and profile is not None
        assert (profile.customer_id, profile.reference, profile.name, profile.language) == (
            ann.id,
            "HMS-1",
            "Ann Able",
            "cy-GB",
        )
    _, bob = cache.read(cache_redis, "+447400100002")
    assert bob is not None and (bob.reference, bob.language) == ("HMS-2", "en-GB")
    assert cache.read(cache_redis, "+447400100003") == (False, None)


def test_refresh_cache_for_drops_stale_numbers_and_rewrites_the_rest(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    first = run(sess, "HMS-1,Ann Able,07400100001;07400100002,")
    refresh_cache_for(sess, cache_redis, first.touched, first.stale_numbers)
    assert cache.read(cache_redis, "+447400100001")[0]
    report = run(sess, "HMS-1,Ann Able-Smith,07400100002;07400100003,")
    assert report.stale_numbers == ["+447400100001"]
    written = refresh_cache_for(sess, cache_redis, report.touched, report.stale_numbers)
    assert written == 2
    assert cache.read(cache_redis, "+447400100001") == (False, None)
    for number in ("+447400100002", "+447400100003"):
        _, profile = cache.read(cache_redis, number)
        assert profile is not None and profile.name == "Ann Able-Smith"


def test_refresh_cache_for_carries_the_restrictions_in_force_of_a_reimported_customer(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    ann = existing(sess, "HMS-1", "Ann Able", "+447400100001")
    add_restriction(
        sess,
        Actor(None, "test"),
        ann,
        {"kind": "written_only", "reason": "4.2", "notice_sent_on": date.today().isoformat()},
    )
    sess.commit()
    cache_redis.flushdb()
    report = run(sess, "HMS-1,Ann Able,07400100001,")
    assert report.unchanged == 1
    refresh_cache_for(sess, cache_redis, report.touched, report.stale_numbers)
    _, profile = cache.read(cache_redis, "+447400100001")
    assert profile is not None and [r.kind for r in profile.restrictions] == ["written_only"]
