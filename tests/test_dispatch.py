"""The rules of every turn: redelivery, ordering under concurrency, failures."""

from __future__ import annotations

import asyncio

from handlers.dispatch import KeyedLocks
from handlers.messages import Inbound, Kind
from handlers.steps import TOTAL_STEPS
from tests.helpers import ANSWERS, Officer


async def test_a_redelivered_event_is_processed_once(officer: Officer, dispatcher):
    await officer.up_to("school_code")
    inbound = Inbound("test", officer.user_id, Kind.TEXT, text=ANSWERS["school_code"], event_id="line-ev-42")
    first = await dispatcher.handle(inbound)
    second = await dispatcher.handle(inbound)
    assert first and second == []
    await officer.say("/status")
    assert f"3/{TOTAL_STEPS}" in officer.text  # one answer taken, not two
    repo = dispatcher.repo
    async with repo.transaction():
        assert await repo.event_seen("test", "line-ev-42")
        assert not await repo.event_seen("other-channel", "line-ev-42")


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
    assert all(results)
    assert sms.sent  # the last answer (the phone) asked for a code: everything before it was taken in order
    repo = dispatcher.repo
    async with repo.transaction():
        conv = await repo.get_conversation("test", officer.user_id)
        reg = await repo.get_registration(conv.registration_id)
    assert conv.state == "otp"
    assert (reg.school_code, reg.school_name, reg.province, reg.old_tsl_username) == (
        "1054530001", "โรงเรียนบ้านหนองบัว", "แพร่", "tsl1234")
    assert len(dispatcher.locks) == 0  # no lock left behind


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


async def test_a_failing_turn_changes_nothing_and_says_sorry(officer: Officer, dispatcher):
    await officer.up_to("school_name")
    repo = dispatcher.repo
    async with repo.transaction():
        conv = await repo.get_conversation("test", officer.user_id)
        # Break the registration link the way a bug or a bad manual edit would.
        await repo.save_conversation(type(conv)(**{**conv.__dict__, "state": "no-such-state"}), dispatcher.clock())
    replies = await officer.say("โรงเรียนใหม่")
    assert officer.said("internal_error")
    assert len(replies) == 1
    async with repo.transaction():
        after = await repo.get_conversation("test", officer.user_id)
        reg = await repo.get_registration(after.registration_id)
        assert not await repo.event_seen("test", "whatever")
    assert after.state == "no-such-state" and reg.school_name is None
