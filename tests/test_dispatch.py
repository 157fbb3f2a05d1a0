"""The rules of every turn: redelivery, ordering under concurrency, failures."""

from __future__ import annotations

import asyncio
import sqlite3

from handlers.locks import KeyedLocks
from handlers.messages import Attachment, Inbound, Kind
from handlers.steps import STEPS, TOTAL_STEPS, State
from templates import text as t
from tests.helpers import ANSWERS, Officer, delivery_of


async def test_a_redelivered_event_is_processed_once(officer: Officer, dispatcher):
    await officer.up_to("school_code")
    inbound = Inbound("test", officer.user_id, Kind.TEXT, text=ANSWERS["school_code"], event_id="line-ev-42")
    first = await dispatcher.handle(inbound)
    second = await dispatcher.handle(inbound)
    assert t("ask_school_name", "th") in first[-1].text
    assert second == []
    repo = dispatcher.repo
    async with repo.transaction():
        conv = await repo.get_conversation("test", officer.user_id)
        reg = await repo.get_registration(conv.registration_id)
        assert await repo.events.seen("test", "line-ev-42")
        assert not await repo.events.seen("other-channel", "line-ev-42")
    assert (conv.state, reg.school_code, reg.school_name) == ("school_name", "1054530001", None)
    await officer.say("/status")
    assert f"3/{TOTAL_STEPS}" in officer.text


async def test_the_same_event_id_on_another_channel_is_another_event(officer: Officer, dispatcher):
    await dispatcher.handle(Inbound("line", "u", Kind.TEXT, text="/start", event_id="1"))
    replies = await dispatcher.handle(Inbound("telegram", "u", Kind.TEXT, text="/start", event_id="1"))
    assert replies


async def test_many_messages_from_one_user_at_once_run_in_order(officer: Officer, dispatcher, sms):
    await officer.up_to("school_code")
    answers = list(ANSWERS.values())
    inbounds = [
        Inbound("test", officer.user_id, Kind.TEXT, text=a, event_id=f"burst-{i}") for i, a in enumerate(answers)
    ]
    results = await asyncio.gather(*(dispatcher.handle(i) for i in inbounds))
    await (await delivery_of(dispatcher))[0].idle()
    # Each answer was taken at its own step: each reply asks the question after it.
    following = ["ask_school_name", "ask_province", "ask_old_tsl", "ask_old_kiddiary", "ask_officer_name",
                 "ask_national_id", "ask_phone"]
    for replies, key in zip(results, following, strict=False):
        assert t(key, "th") in replies[-1].text, key
    assert "08x-xxx-5678" in results[-1][-1].text and len(sms.sent) == 1
    assert len(dispatcher.locks) == 0  # no lock left behind


async def test_a_slow_message_is_not_overtaken_by_the_next_one(officer: Officer, dispatcher):
    # The photo is decoded and its QR read in a worker thread before its turn starts; the status
    # request right behind it must still wait for it (the per-user lock), and so report it.
    from tests.test_signed_letter import at_letter_step, letter_pdf, phone_photo

    await at_letter_step(officer)
    photo = phone_photo(letter_pdf(officer))
    first, second = await asyncio.gather(
        dispatcher.handle(Inbound("test", officer.user_id, Kind.PHOTO, attachment=Attachment(photo), event_id="p")),
        dispatcher.handle(Inbound("test", officer.user_id, Kind.TEXT, text="/status", event_id="s")),
    )
    async with dispatcher.repo.transaction():
        ref = (await dispatcher.repo.registrations_of("test", officer.user_id))[0].ref
    assert t("letter_received_matched", "th", ref=ref) in first[0].text
    assert second[0].text == t("status_submitted", "th", ref=ref, school="โรงเรียนบ้านหนองบัว",
                               n=STEPS[State.SUBMITTED].number, total=TOTAL_STEPS)


async def test_many_users_at_once_do_not_mix(dispatcher, sms):
    officers = [Officer(dispatcher, sms, user_id=f"user-{n}") for n in range(20)]
    await asyncio.gather(*(o.up_to("officer_name") for o in officers))
    await asyncio.gather(*(o.say(f"นายคนที่ {'กขคงจฉชซฌญฎฏฐฑฒณดตถท'[n]}") for n, o in enumerate(officers)))
    repo = dispatcher.repo
    async with repo.transaction():
        for n, o in enumerate(officers):
            conv = await repo.get_conversation("test", o.user_id)
            reg = await repo.get_registration(conv.registration_id)
            assert reg.user_id == o.user_id and reg.officer_last_name == "กขคงจฉชซฌญฎฏฐฑฒณดตถท"[n]
        assert await repo.count_by_status() == {"draft": 20}


async def test_keyed_locks_serialise_one_key_and_not_others():
    locks, log = KeyedLocks(), []

    async def work(key: str, n: int) -> None:
        async with locks.hold(key):
            log.append(f"{key}{n}+")
            await asyncio.sleep(0)
            log.append(f"{key}{n}-")

    await asyncio.gather(work("a", 1), work("a", 2), work("b", 1))
    assert log.index("a1-") < log.index("a2+")  # a2 waited for a1
    assert log.index("b1+") < log.index("a1-")  # b did not wait for a
    assert len(locks) == 0


async def test_a_turn_that_fails_half_way_keeps_nothing_and_can_be_redelivered(officer: Officer, dispatcher, tmp_path):
    await officer.up_to("school_name")
    # A fault in the database itself, after the conversation row is written and before the
    # registration is: the whole turn must roll back.
    with sqlite3.connect(tmp_path / "kiddiary.sqlite3") as db:
        db.execute("""CREATE TRIGGER fail_once BEFORE UPDATE ON registrations
                      WHEN NEW.school_name = 'โรงเรียนวัดใหม่' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END""")
    inbound = Inbound("test", officer.user_id, Kind.TEXT, text="โรงเรียนวัดใหม่", event_id="ev-fail")
    replies = await dispatcher.handle(inbound)
    assert [r.text for r in replies] == [t("internal_error", "th")]
    repo = dispatcher.repo
    async with repo.transaction():
        conv = await repo.get_conversation("test", officer.user_id)
        reg = await repo.get_registration(conv.registration_id)
        assert not await repo.events.seen("test", "ev-fail")
    assert (conv.state, reg.school_name) == ("school_name", None)

    with sqlite3.connect(tmp_path / "kiddiary.sqlite3") as db:
        db.execute("DROP TRIGGER fail_once")
    replies = await dispatcher.handle(inbound)  # the platform redelivers: now it goes through
    assert t("ask_province", "th") in replies[-1].text
