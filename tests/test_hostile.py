"""Hostile inputs (tests/hostile_corpus.py) through the core at every state of the conversation,
and through each channel's webhook: nothing breaks, every input gets an answer a user can act
on, what is stored stays valid, and a refused input changes nothing stored."""

from __future__ import annotations

import copy
import logging
import tempfile
from collections.abc import AsyncIterator
from itertools import count
from pathlib import Path

import pytest

from handlers.dispatch import Dispatcher
from handlers.messages import Inbound, Kind, Outbound
from handlers.states import State
from handlers.validation import MAX_PAYLOAD_LENGTH, MAX_RAW_LENGTH
from storage import Conversation, Registration, Repository
from templates import text
from tests.fakes.sms import RecordingSmsGateway
from tests.helpers import Officer, stop_delivery
from tests.hostile_corpus import PAYLOADS, TEXTS
from tests.test_signed_letter import letter_pdf, without_qr
from tests.validity import INTERNAL_ERROR, leaks, problems, refused

# Where an officer can be, in the order a registration reaches them.
STEPS = ["consent", "affiliation", "school_code", "school_name", "province", "institution", "old_tsl",
         "old_kiddiary", "officer_name", "national_id", "phone", "otp", "summary", "letter", "submitted"]
_officers, _events = count(1), count(1)


@pytest.fixture
async def repo(crypto) -> AsyncIterator[Repository]:
    """The repository in memory-backed files where the machine has them: thousands of turns, each
    committed with a flush to disk, would spend most of their time waiting for it."""
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as folder:
        repository = await Repository.open(Path(folder) / "kiddiary.sqlite3", crypto)
        yield repository
        await repository.close()


def test_the_corpus_is_big_and_varied():
    assert len(TEXTS) + len(PAYLOADS) >= 200
    assert len(set(TEXTS)) == len(TEXTS) and len(set(PAYLOADS)) == len(PAYLOADS)


async def officer_at(dispatcher: Dispatcher, sms: RecordingSmsGateway, step: str) -> Officer:
    """A new officer, every earlier question answered correctly, at `step`. Their answers are
    what each turn committed (the delivery runs beside, as in production), except for the
    letter, which a photo of is made from."""
    n = next(_officers)
    officer = Officer(dispatcher, sms, user_id=f"hostile-{step}-{n}", phone=f"081{n:07d}", wait_for_delivery=False)
    if step == "start":
        return officer
    if step == "consent":
        await officer.say("/start")
    elif step == "institution":  # a local-government name that does not say school or centre
        await officer.up_to("affiliation")
        await officer.press("aff:lao")
        for answer in ("12345", "บ้านดอนมูล", "แพร่"):
            await officer.say(answer)
    elif step in ("letter", "submitted"):
        await officer.up_to("summary")
        officer.wait_for_delivery = step == "submitted"
        await officer.press("confirm")
        if step == "submitted":
            await officer.photo(without_qr(letter_pdf(officer)))
            officer.wait_for_delivery = False
    else:
        await officer.up_to(step)
    conv, _ = await stored(officer)
    assert conv is not None and conv.state == step, (step, conv)
    # What follows is judged on the answers each turn commits: the delivery, not its subject,
    # stops (the next walk starts it again), and the turns have the machine to themselves.
    await stop_delivery(dispatcher)
    dispatcher.on_commit = None
    return officer


async def put_back(officer: Officer, conv: Conversation, reg: Registration | None) -> bool:
    """The conversation and registration stored again as they were (the input was taken: the
    next one starts from the same step); False when more than those changed (a code was sent
    or dropped), and the officer must walk there again."""
    now_conv, _ = await stored(officer)
    if now_conv is None or now_conv.otp_challenge_id != conv.otp_challenge_id:
        return False
    repo = officer.dispatcher.repo
    async with repo.transaction():
        await repo.save_conversation(conv, officer.dispatcher.clock())
        if reg is not None:
            await repo.save_registration(reg, officer.dispatcher.clock())
    return await stored(officer) == (conv, reg)


async def stored(officer: Officer):
    repo = officer.dispatcher.repo
    async with repo.transaction():
        conv = await repo.get_conversation(officer.channel, officer.user_id)
        reg = await repo.get_registration(conv.registration_id) if conv and conv.registration_id else None
    return conv, reg


def check_answer(replies: list[Outbound], typed: str, where: str) -> str:
    """The answer, checked: there is one, it is no apology for a failure, nothing internal leaks."""
    answer = "\n".join(r.text for r in replies)
    assert replies and answer.strip(), f"no answer to {typed!r} at {where}"
    assert not INTERNAL_ERROR & {r.text for r in replies}, f"{typed!r} at {where} broke the turn"
    assert not leaks(answer + "".join(c.label for r in replies for c in r.choices), typed), (
        f"{typed!r} at {where}: {leaks(answer, typed)} in {answer!r}")
    return answer


@pytest.mark.parametrize("step", ["start", *STEPS])
async def test_every_hostile_input_at_every_step(dispatcher, sms, step, caplog):
    inputs = [(Kind.TEXT, t) for t in TEXTS] + [(Kind.BUTTON, p) for p in PAYLOADS]
    officer = await officer_at(dispatcher, sms, step)
    now = await stored(officer)
    for kind, value in inputs:
        before_conv, before_reg = copy.deepcopy(now)
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            replies = await officer.dispatcher.handle(Inbound(
                officer.channel, officer.user_id, kind, event_id=f"hostile-{next(_events)}",
                **({"text": value} if kind is Kind.TEXT else {"payload": value})))
        assert not [r for r in caplog.records if r.exc_info], f"{value!r} at {step} raised"
        answer = check_answer(replies, value, step)
        conv, reg = now = await stored(officer)
        assert not problems(conv, reg), f"{value!r} at {step}: {problems(conv, reg)}"
        if refused(answer):
            assert (conv, reg) == (before_conv, before_reg) or (
                step == "start" and before_conv is None), f"{value!r} refused at {step} but changed what is stored"
        if (conv, reg) != (before_conv, before_reg) and (
            before_conv is None or not await put_back(officer, before_conv, before_reg)
        ):
            officer = await officer_at(dispatcher, sms, step)
        if (conv, reg) != (before_conv, before_reg):
            now = await stored(officer)


async def test_an_overlong_text_is_refused_on_its_length_and_changes_nothing(officer):
    await officer.up_to("school_name")
    before = await stored(officer)
    await officer.say("ก" * (MAX_RAW_LENGTH + 1))
    assert officer.said("too_long", count=MAX_RAW_LENGTH + 1)
    assert officer.payloads[-1] == "cmd:back"  # the question's buttons stay
    await officer.say(" " * 1_000_000)  # long before cleaning, empty after: the length decides
    assert officer.said("too_long", count=1_000_000)
    assert await stored(officer) == before


async def test_overlong_button_data_is_refused_and_changes_nothing(officer):
    await officer.up_to("affiliation")
    before = await stored(officer)
    await officer.send(Kind.BUTTON, payload="aff:obec" + "x" * MAX_PAYLOAD_LENGTH)
    assert officer.said("stale_button")
    assert await stored(officer) == before


async def test_overlong_chatter_in_a_group_gets_no_answer(dispatcher, sms):
    member = Officer(dispatcher, sms, user_id="group-member")
    assert await member.send(Kind.TEXT, text="a" * (MAX_RAW_LENGTH + 1), group_id="group-1") == []
    replies = await member.send(Kind.TEXT, text="/find " + "a" * MAX_RAW_LENGTH, group_id="group-1")
    assert [r.text for r in replies] == [text("too_long", "th", count=MAX_RAW_LENGTH + 6)]


def test_states_are_all_covered():
    assert {"start", *STEPS} == {s.value for s in State}
