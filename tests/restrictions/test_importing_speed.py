"""The customer import's fast path: on PostgreSQL a batch of rows is decided in Python and written
set-based with COPY; everywhere else (and for a batch that meets another writer) each row goes
through create_customer / update_customer in its own savepoint. Both must come to the same thing:
the same report, the same customers and numbers, the same audit entries. The behaviour itself is
pinned down in test_importing.py; here, the two paths are held to each other over random files,
and the pieces that make the fast path fast (the number check, the cache refill) to what they
stand in for.
"""

from __future__ import annotations

import io
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fakeredis
import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

from restrictions import cache, importing
from restrictions.errors import Invalid
from restrictions.importing import ImportReport, import_customers, refresh_cache_for
from restrictions.lifecycle import Actor, create_customer
from restrictions.models import AuditEntry, Base, Customer
from restrictions.phone import to_e164

HEADER = "reference,name,phone_numbers,language"
IMPORTER = Actor(None, "import:customers.csv")


def csv_text(*lines: str) -> str:
    return "".join(f"{line}\n" for line in (HEADER, *lines))


@contextmanager
def scratch(engine: Engine) -> Iterator[Session]:
    """A session like the ``sess`` fixture's (commits are savepoints), rolled back after."""
    connection = engine.connect()
    outer = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


def set_based(sess: Session, text: str) -> ImportReport:
    return import_customers(sess, io.StringIO(text), IMPORTER)


def row_by_row(sess: Session, text: str) -> ImportReport:
    importer = importing._Importer(sess, IMPORTER, None)
    importer.row_by_row(importing._parsed(io.StringIO(text), lambda n: None))
    return importer.report


# --- random files ------------------------------------------------------------------------------

NUMBERS = [f"+4474001{i:05d}" for i in range(10)]  # few, so rows fight over them
REFS = [f"R{i}" for i in range(7)]


def written(rng: random.Random, e164: str) -> str:
    national = "0" + e164[3:]
    return rng.choice([e164, national, f"{national[:5]} {national[5:]}", f"({national[:5]}) "])


def random_file(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(1, 14)):
        ref = rng.choice([*REFS, *REFS, "", "X" * 65])
        name = rng.choice(["Ann", "Ann", "Bob", "", "N" * 201, "Cat, Jr"])
        numbers = [written(rng, n) for n in rng.sample(NUMBERS, rng.randint(1, 3))]
        if rng.random() < 0.1:
            numbers.append(rng.choice(["12345", "call me", " "]))
        if rng.random() < 0.05:
            numbers = []
        language = rng.choice(["", "en-GB", "cy-GB", "en-GB", "fr-FR"])
        lines.append(f'{ref},"{name}","{";".join(numbers)}",{language}')
        if rng.random() < 0.1:
            lines.append("")
    return csv_text(*lines)


def seed_customers(sess: Session, rng: random.Random) -> None:
    free = list(NUMBERS)
    rng.shuffle(free)
    for ref in rng.sample(REFS, 3):
        create_customer(
            sess,
            Actor(None, "test"),
            reference=ref,
            name=rng.choice(["Ann", "Bob"]),
            phone_numbers=[free.pop() for _ in range(rng.randint(1, 2))],
            language=rng.choice(["en-GB", "cy-GB"]),
            adjustments=rng.choice([{}, {"slow_speech": True}]),
            refresh_cache=False,
        )
    sess.commit()


def outcome(sess: Session, report: ImportReport, audited_before: int) -> dict[str, Any]:
    """What an import did, by reference (the two paths' ids differ)."""
    sess.expire_all()
    ref_of = {id_: ref for id_, ref in sess.execute(select(Customer.id, Customer.reference))}
    clash = re.compile(r"phone number \S+ already belongs to customer \S+")
    return {
        "counts": (report.created, report.updated, report.unchanged),
        # which of a row's numbers is named when several belong to others is not fixed
        "skipped": [(line, clash.sub("(a clash)", reason)) for line, reason in report.skipped],
        "touched": [ref_of[i] for i in report.touched],
        "stale": report.stale_numbers,
        "customers": {
            c.reference: (c.name, c.language, c.adjustments, [n.e164 for n in c.numbers])
            for c in sess.scalars(select(Customer))
        },
        "audit": [
            (e.action, e.actor, e.actor_id, ref_of[e.entity_id], e.customer_id in ref_of)
            + (e.before, e.after, e.note)
            for e in sess.scalars(
                select(AuditEntry).where(AuditEntry.id > audited_before).order_by(AuditEntry.id)
            )
        ],
    }


@pytest.mark.parametrize("seed", range(60))
def test_set_based_batches_decide_every_row_as_row_by_row_does(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    monkeypatch.setattr(importing, "SET_BATCH", random.Random(seed).choice([1, 3, 50]))
    results = []
    for path in (set_based, row_by_row):
        rng = random.Random(seed)
        with scratch(engine) as sess:
            seed_customers(sess, rng)
            files = [random_file(rng), random_file(rng)]
            runs = []
            for text in (files[0], files[0], files[1]):  # an import, its re-run, a new export
                audited = sess.scalar(select(func.max(AuditEntry.id))) or 0
                runs.append(outcome(sess, path(sess, text), audited))
            results.append(runs)
    fast, slow = results
    assert fast == slow
    if not fast[0]["skipped"]:  # a skipped row may land next time (a number freed after it)
        assert fast[1]["counts"][:2] == (0, 0) and fast[1]["audit"] == []


# --- what a customer's numbers are -------------------------------------------------------------


@pytest.mark.parametrize("path", [set_based, row_by_row])
def test_numbers_are_a_set_kept_in_the_order_they_were_recorded(sess: Session, path: Any) -> None:
    path(sess, csv_text("HMS-1,Ann Able,07400100001;07400100002,"))
    again = path(sess, csv_text("HMS-1,Ann Able,07400100002;07400100001,"))
    assert (again.updated, again.unchanged) == (0, 1)
    added = path(sess, csv_text("HMS-1,Ann Able,07400100003;07400100002,"))
    assert added.updated == 1 and added.stale_numbers == ["+447400100001"]
    ann = sess.scalar(select(Customer).where(Customer.reference == "HMS-1"))
    assert ann is not None and [n.e164 for n in ann.numbers] == ["+447400100002", "+447400100003"]
    entry = sess.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry is not None and entry.before is not None and entry.after is not None
    assert entry.before["phone_numbers"] == ["+447400100001", "+447400100002"]
    assert entry.after["phone_numbers"] == ["+447400100002", "+447400100003"]
    assert path(sess, csv_text("HMS-1,Ann Able,07400100003;07400100002,")).unchanged == 1


def test_a_nul_in_a_reference_is_a_bad_row_not_a_database_error(sess: Session) -> None:
    report = set_based(sess, csv_text("HMS\x001,Ann Able,07400100001,", "HMS-2,Bob,07400100002,"))
    assert report.skipped == [(2, "reference must not contain NUL characters")]
    assert report.created == 1


# --- another writer in between -----------------------------------------------------------------


def test_a_batch_that_meets_another_writer_is_imported_again_row_by_row(
    sess: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_customer(
        sess,
        Actor(None, "test"),
        reference="OLD-1",
        name="Olive Old",
        phone_numbers=["+447400100001"],
        refresh_cache=False,
    )
    sess.commit()
    looked_up = importing._look_up

    def before_old_1_took_it(cur: Any, batch: Any) -> Any:
        existing, owners = looked_up(cur, batch)
        owners.pop("+447400100001", None)
        return existing, owners

    monkeypatch.setattr(importing, "_look_up", before_old_1_took_it)
    landed: list[tuple[list[int], list[str]]] = []
    report = import_customers(
        sess,
        io.StringIO(csv_text("HMS-1,Ann Able,07400100002;07400100001,", "HMS-2,Bob,07400100003,")),
        IMPORTER,
        landed=lambda ids, stale: landed.append((ids, stale)),
    )
    assert report.skipped == [(2, "phone number +447400100001 already belongs to customer OLD-1")]
    assert (report.created, len(report.touched)) == (1, 1)
    assert landed == [(report.touched, [])]
    assert set(sess.scalars(select(Customer.reference))) == {"OLD-1", "HMS-2"}
    assert sess.scalar(select(func.count()).select_from(AuditEntry)) == 2


# --- each batch handed on as it lands ----------------------------------------------------------


def test_landed_is_told_each_committed_batch_which_together_make_the_report(
    sess: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "SET_BATCH", 2)
    set_based(sess, csv_text("HMS-1,Ann,07400100001;07400100009,"))
    landed: list[tuple[list[int], list[str]]] = []
    report = import_customers(
        sess,
        io.StringIO(
            csv_text(
                "HMS-1,Ann,07400100001,",
                "HMS-2,,07400100002,",
                "HMS-3,Cat,07400100003,",
                "HMS-4,Dan,07400100004,",
                "HMS-5,Eve,07400100005,",
            )
        ),
        IMPORTER,
        landed=lambda ids, stale: landed.append((ids, stale)),
    )
    assert [len(ids) for ids, _ in landed] == [1, 2, 1]
    assert [i for ids, _ in landed for i in ids] == report.touched
    assert [n for _, stale in landed for n in stale] == report.stale_numbers == ["+447400100009"]


# --- the pieces ----------------------------------------------------------------------------------


def test_the_quick_number_check_agrees_with_to_e164() -> None:
    rng = random.Random(44)

    def normalised(check: Any, text: str) -> str:
        try:
            return str(check(text))
        except Invalid as exc:
            return f"invalid: {exc.message}"

    for _ in range(3000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(8, 11)))
        text = rng.choice(["0", "+44", "+440", "00", ""]) + digits
        for _ in range(rng.randint(0, 3)):
            at = rng.randint(0, len(text))
            text = text[:at] + rng.choice(" ()-.") + text[at:]
        assert normalised(importing._e164, text) == normalised(to_e164, text), text


def test_the_cache_refill_builds_the_profiles_cache_profiles_does(sess: Session) -> None:
    for i, adjustments in enumerate([{}, {"slow_speech": True}, {"slow_speech": False}]):
        create_customer(
            sess,
            Actor(None, "test"),
            reference=f"HMS-{i}",
            name=f"Person {i}",
            phone_numbers=[f"+44740010000{i}", f"+44740010001{i}"],
            language=["en-GB", "cy-GB", "pl-PL"][i],
            adjustments=adjustments,
            refresh_cache=False,
        )
    sess.commit()
    ids = list(sess.scalars(select(Customer.id)))
    redis = fakeredis.FakeRedis()
    assert refresh_cache_for(sess, redis, ids) == 6
    for number, profile in cache.profiles(sess, ids):
        assert cache.read(redis, number) == (True, profile)


def test_sqlite_imports_row_by_row_and_refills_the_cache() -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    lines = ("HMS-1,Ann Able,07400 100001;01332 123456,cy-GB", "HMS-2,,07400100002,")
    with Session(engine, expire_on_commit=False) as sess:
        report = set_based(sess, csv_text(*lines))
        assert (report.created, report.skipped) == (1, [(3, "name is required and must be text")])
        again = set_based(sess, csv_text(*lines))
        assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
        redis = fakeredis.FakeRedis()
        assert refresh_cache_for(sess, redis, again.touched, again.stale_numbers) == 2
        _, profile = cache.read(redis, "+441332123456")
        assert profile is not None and (profile.reference, profile.language) == ("HMS-1", "cy-GB")
    engine.dispose()
