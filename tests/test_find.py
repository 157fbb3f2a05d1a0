"""/find: by the officer's name (keyed hashes, the name stays encrypted), by a reference read
back with the usual confusions, by phone and school code through their indexes; an overlong
query refused before SQL; every /find in the audit log."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest

from handlers.dispatch import Dispatcher
from handlers.find import MAX_QUERY, as_reference
from handlers.messages import Address
from handlers.validation import local_phone, thai_mobile
from storage import Repository
from templates import text as t
from tests.helpers import ANSWERS, Officer

REVIEWER = Address("test", "rev1")


@pytest.fixture
def reviewing(dispatcher: Dispatcher, settings) -> Dispatcher:
    dispatcher.settings = replace(settings, reviewers=frozenset({REVIEWER}))
    return dispatcher


async def registered(dispatcher: Dispatcher, sms, user_id: str, name: str, phone: str) -> str:
    """A registration filled in up to the summary with this officer name and phone (verified)."""
    officer = Officer(dispatcher, sms, user_id=user_id, phone=phone)
    await officer.up_to("officer_name")
    await officer.say(name)
    await officer.say(ANSWERS["national_id"])
    await officer.say(phone)
    await officer.say(sms.last_code(thai_mobile(phone)))
    assert officer.said("otp_verified", phone=local_phone(thai_mobile(phone)))
    repo = dispatcher.repo
    async with repo.transaction():
        return (await repo.registrations_of(officer.channel, user_id))[0].ref


@pytest.fixture
async def three(reviewing, sms) -> dict[str, str]:
    return {
        "somsri": await registered(reviewing, sms, "o1", "นางสาวสมศรี ใจดี", "0811111111"),
        "somchai": await registered(reviewing, sms, "o2", "นายสมชาย ใจดี", "0822222222"),
        "john": await registered(reviewing, sms, "o3", "Mr. John Smith", "0833333333"),
    }


async def found(reviewing, sms, query: str) -> str:
    reviewer = Officer(reviewing, sms, user_id=REVIEWER.id)
    await reviewer.say(f"/find {query}")
    return reviewer.text


NAME_QUERIES = [
    ("สมศรี", {"somsri"}),
    ("ใจดี", {"somsri", "somchai"}),
    ("สมศรี ใจดี", {"somsri"}),
    ("นางสาวสมศรี ใจดี", {"somsri"}),  # as written on the letter, title and all
    ("ใจดี สมชาย", {"somchai"}),  # any order
    ("john", {"john"}),
    ("SMITH", {"john"}),
    ("Mr. John Smith", {"john"}),
]


async def test_find_by_the_officers_name(reviewing, sms, three):
    for query, expected in NAME_QUERIES:
        text = await found(reviewing, sms, query)
        assert {who for who, ref in three.items() if ref in text} == expected, query


async def test_a_name_that_is_nobodys_finds_nothing(reviewing, sms, three):
    text = await found(reviewing, sms, "สมหญิง")
    assert text == t("review_nothing_found", "th", query="สมหญิง")


async def test_the_name_stays_encrypted(reviewing, sms, three, tmp_path):
    with sqlite3.connect(tmp_path / "kiddiary.sqlite3") as db:
        db.execute("PRAGMA wal_checkpoint(FULL)")
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("kiddiary.sqlite3*"))
    for word in ("สมศรี", "ใจดี", "John", "john", "Smith", "smith"):
        assert word.encode() not in raw


SPOKEN = [
    lambda ref: ref,
    lambda ref: ref.lower(),
    lambda ref: ref.replace("-", ""),
    lambda ref: ref.replace("-", " ").lower(),
    lambda ref: ref.replace("0", "O").replace("1", "I"),
    lambda ref: ref.replace("1", "l").lower(),
    lambda ref: ref.removeprefix("KD-"),
]


async def test_a_reference_read_back_with_the_usual_confusions(reviewing, sms, three):
    ref = three["somsri"]
    for spoken in SPOKEN:
        text = await found(reviewing, sms, spoken(ref))
        assert ref in text and three["somchai"] not in text, spoken(ref)


def test_reference_confusions_are_mapped_as_references_are_made():
    assert as_reference("kd-0o1i-l1ab") == "KD-0011-11AB"
    assert as_reference("12345678") is None  # eight digits alone: a school code, not a reference
    assert as_reference("KD12345678") == "KD-1234-5678"
    assert as_reference("สมศรี") is None


async def test_find_by_phone(reviewing, sms, three):
    for typed in ("0811111111", "081-111-1111", "+66 81 111 1111", "๐๘๑๑๑๑๑๑๑๑"):
        text = await found(reviewing, sms, typed)
        assert three["somsri"] in text and three["somchai"] not in text, typed


async def test_find_by_school_code_and_school_name(reviewing, sms, three):
    by_code, by_name = await found(reviewing, sms, "1054530001"), await found(reviewing, sms, "หนองบัว")
    assert all(ref in by_code and ref in by_name for ref in three.values())


async def test_exact_lookups_use_their_indexes(reviewing, sms, three, repo):
    """Every statement a /find by phone, reference, school code or name runs is planned on an
    index: none scans the registrations."""
    statements: list[str] = []
    connection = repo._db._db  # the aiosqlite connection: only to watch what SQL runs
    await connection.set_trace_callback(statements.append)
    try:
        for query in ("0811111111", three["somsri"].lower(), "1054530001", "สมศรี ใจดี"):
            await found(reviewing, sms, query)
    finally:
        await connection.set_trace_callback(None)
    # The look-ups of storage/search.py (the school name, not personal data, is matched as text
    # by a LIKE that does scan: it is left out here).
    searches = [s for s in statements if s.lstrip().startswith("SELECT * FROM registrations WHERE")
                and any(key in s for key in ("ref =", "phone_index =", "school_code =", "id IN"))]
    assert len(searches) == 4, searches
    for statement in searches:
        plan = [row[3] for row in await connection.execute_fetchall(f"EXPLAIN QUERY PLAN {statement}")]
        assert not any(step.startswith("SCAN") and "USING" not in step for step in plan), (statement, plan)


async def test_an_overlong_query_is_refused_before_any_search(reviewing, sms, three, repo):
    statements: list[str] = []
    connection = repo._db._db
    await connection.set_trace_callback(statements.append)
    try:
        text = await found(reviewing, sms, "ก" * (MAX_QUERY + 1))
    finally:
        await connection.set_trace_callback(None)
    assert text == t("review_find_too_long", "th", count=MAX_QUERY + 1, max=MAX_QUERY)
    assert not [s for s in statements if "FROM registrations" in s or "registration_name_tokens" in s]
    async with repo.transaction():
        assert await repo.audit_log.entries("find") == []


async def test_every_find_is_an_audit_event_without_the_typed_text(reviewing, sms, three, repo):
    await found(reviewing, sms, "0811111111")
    await found(reviewing, sms, "สมหญิง")
    async with repo.transaction():
        entries = await repo.audit_log.entries("find")
    assert [(e.actor, e.detail) for e in reversed(entries)] == [
        (str(REVIEWER), {"by": "phone", "found": [three["somsri"]]}),
        (str(REVIEWER), {"by": "school_name", "found": []}),
    ]


async def test_an_officer_cannot_find(reviewing, sms, three, repo):
    officer = Officer(reviewing, sms, user_id="o1")
    await officer.say("/find ใจดี")
    assert officer.said("review_not_reviewer") and three["somchai"] not in officer.text


async def test_names_stored_before_the_index_are_filled_in_at_start_up(reviewing, sms, three, repo, crypto, tmp_path):
    path = tmp_path / "kiddiary.sqlite3"
    async with repo.transaction():  # as a database from before migration 0011 would be
        await repo._db.execute("DELETE FROM registration_name_tokens")
    assert three["somsri"] not in await found(reviewing, sms, "สมศรี")
    reopened = await Repository.open(path, crypto)
    try:
        async with reopened.transaction():
            assert [r.ref for r in await reopened.search.by_name({"สมศรี"})] == [three["somsri"]]
    finally:
        await reopened.close()


async def test_erasing_the_name_removes_its_words(reviewing, sms, three, repo):
    officer = Officer(reviewing, sms, user_id="o1")
    await officer.say("/cancel")
    await officer.press("cancel:yes")
    assert three["somsri"] not in await found(reviewing, sms, "สมศรี")
    async with repo.transaction():
        rows = await repo._db.all("SELECT COUNT(*) FROM registration_name_tokens")
    assert rows[0][0] == 4  # somchai's two words and john's two, none of somsri's
