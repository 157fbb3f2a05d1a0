"""Abuse of the review: approving one's own registration from a second account, and two
approvals for one school (refused unless a reviewer replaces the first, which is revoked)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.provision_http import HttpProvisioner
from handlers.dispatch import Dispatcher
from handlers.messages import Address
from handlers.provisioning import SchoolCodeProvisioner
from storage.models import UsernameTaken
from templates import text as t
from tests.fakes.http_service import FakeService
from tests.helpers import ANSWERS, Officer, delivered
from tests.test_review import stored, submitted, submitted_with_letter
from tests.test_signed_letter import at_letter_step, letter_pdf, phone_photo, send

# Two accounts of one person, as on two platforms (the core test chat carries every one of them).
TELEGRAM_OFFICER = Address("test", "telegram-555")
LINE_REVIEWER = Address("test", "line-Urev1")
OTHER_REVIEWER = Address("test", "telegram-777")
ANOTHER_NATIONAL_ID = "3100500123458"


@pytest.fixture
def reviewing(dispatcher: Dispatcher, settings) -> Dispatcher:
    dispatcher.settings = replace(settings, reviewers=frozenset({LINE_REVIEWER, OTHER_REVIEWER}))
    dispatcher.provisioner = SchoolCodeProvisioner("https://kiddiary.example/login")
    return dispatcher


async def submitted_later(officer: Officer) -> str:
    """Like `submitted`, a few minutes on (the helpers' phone is past its resend cooldown)."""
    officer.dispatcher.clock.advance(minutes=2)
    return await submitted(officer)


def person(dispatcher: Dispatcher, sms, address: Address, **kw) -> Officer:
    return Officer(dispatcher, sms, channel=address.channel, user_id=address.id, **kw)


async def audit_kinds(dispatcher: Dispatcher, ref: str) -> list[str]:
    async with dispatcher.repo.transaction():
        reg = await dispatcher.repo.get_registration_by_ref(ref)
        return [e.kind for e in await dispatcher.repo.audit_trail(reg.id)]


async def registers_with(officer: Officer, national_id: str, phone: str) -> None:
    """Up to the summary with this national ID and phone (verified by its code)."""
    officer.dispatcher.clock.advance(minutes=2)  # past the phone's resend cooldown
    officer.phone = phone
    await officer.up_to("national_id")
    await officer.say(national_id)
    await officer.say(phone)
    await officer.say(officer.sms.last_code())
    async with officer.dispatcher.repo.transaction():
        [reg] = await officer.dispatcher.repo.registrations_of(officer.channel, officer.user_id)
    assert reg.national_id == national_id.replace("-", "") and reg.phone_verified_at is not None


async def test_a_reviewer_cannot_approve_their_registration_from_another_account(reviewing, sms):
    """telegram:555 registers; the same person reviews as a LINE user who once began a
    registration with the same national ID: refused, on the record; another reviewer may."""
    ref = await submitted(person(reviewing, sms, TELEGRAM_OFFICER))
    reviewer = person(reviewing, sms, LINE_REVIEWER)
    await registers_with(reviewer, ANSWERS["national_id"], "0899999999")  # their own ID, another phone
    await reviewer.say(f"/approve {ref}")
    assert reviewer.said("review_own_person", ref=ref)
    assert (await stored(reviewing, ref)).status == "submitted"
    assert "own_decision_refused" in await audit_kinds(reviewing, ref)
    await reviewer.say(f"/reject {ref} unsigned")  # nor reject it
    assert reviewer.said("review_own_person", ref=ref)

    other = person(reviewing, sms, OTHER_REVIEWER)
    await other.say(f"/approve {ref}")
    assert other.said("review_approved", ref=ref, school=ANSWERS["school_name"])


async def test_a_verified_phone_of_the_reviewer_is_enough(reviewing, sms):
    ref = await submitted(person(reviewing, sms, TELEGRAM_OFFICER))
    reviewer = person(reviewing, sms, LINE_REVIEWER)
    await registers_with(reviewer, ANOTHER_NATIONAL_ID, ANSWERS["phone"])  # another ID, the same phone
    await reviewer.say(f"/approve {ref}")
    assert reviewer.said("review_own_person", ref=ref)
    assert (await stored(reviewing, ref)).status == "submitted"


async def test_accounts_are_linked_through_a_shared_verified_phone(reviewing, sms):
    """The reviewer's LINE account knows phone P (and ID Z). Their Telegram account registered a
    first school with phone P, then submits a second with ID X and phone Q: neither X nor Q is
    the reviewer's, but the Telegram account is (it verified P), so it is refused."""
    officer = person(reviewing, sms, TELEGRAM_OFFICER, phone="0861111111")
    await at_letter_step(officer)  # first registration: ID X, phone P
    await officer.say("/new")
    await officer.press("consent:accept")
    await officer.press("aff:obec")
    for name, answer in ANSWERS.items():
        await officer.say("0862222222" if name == "phone" else answer)  # second: ID X, phone Q
    await officer.say(sms.last_code("+66862222222"))
    await officer.press("confirm")
    await send(officer, phone_photo(letter_pdf(officer)))
    async with reviewing.repo.transaction():
        ref = (await reviewing.repo.registrations_of(TELEGRAM_OFFICER.channel, TELEGRAM_OFFICER.id))[-1].ref
    assert (await stored(reviewing, ref)).status == "submitted"

    reviewer = person(reviewing, sms, LINE_REVIEWER)
    await registers_with(reviewer, ANOTHER_NATIONAL_ID, "0861111111")  # ID Z, phone P
    await reviewer.say(f"/approve {ref}")
    assert reviewer.said("review_own_person", ref=ref)
    assert (await stored(reviewing, ref)).status == "submitted"


async def test_a_reviewer_with_no_registration_of_their_own_decides_as_before(reviewing, sms):
    ref = await submitted(person(reviewing, sms, TELEGRAM_OFFICER))
    reviewer = person(reviewing, sms, LINE_REVIEWER)
    await reviewer.say(f"/approve {ref}")
    assert reviewer.said("review_approved", ref=ref, school=ANSWERS["school_name"])


async def test_a_second_approval_for_a_school_is_refused_then_replaces_the_first(reviewing, sms):
    first = person(reviewing, sms, Address("test", "101"))
    first_ref = await submitted(first)
    reviewer = person(reviewing, sms, OTHER_REVIEWER)
    await reviewer.say(f"/approve {first_ref}")
    await reviewing.settle()

    second = person(reviewing, sms, Address("test", "102"))
    second_ref = await submitted_later(second)
    await reviewer.say(f"/approve {second_ref}")
    assert reviewer.said("review_school_approved", ref=second_ref, other=first_ref, school=ANSWERS["school_name"],
                         who=str(OTHER_REVIEWER), when="10:00 น.")
    assert (await stored(reviewing, second_ref)).status == "submitted"
    assert (await stored(reviewing, first_ref)).account_username == "sch1054530001"

    replies = await delivered(reviewing, reviewer.press(f"review:replace:{second_ref}:"
                                                        + reviewer.payloads[0].rsplit(":", 1)[1]))
    old, new = await stored(reviewing, first_ref), await stored(reviewing, second_ref)
    assert old.status == "revoked" and old.account_username is None
    assert new.status == "approved" and new.account_username == "sch1054530001"
    assert reviewer.said("review_revoked", ref=first_ref, new=second_ref)
    told = [r.text for r in replies + reviewer.replies if r.to == Address("test", "101")]
    assert t("officer_revoked", "th", ref=first_ref, school=ANSWERS["school_name"]) in told
    assert "revoked" in await audit_kinds(reviewing, first_ref)
    await first.say("/status")
    assert first.said("status_revoked", ref=first_ref, school=ANSWERS["school_name"])


async def test_approve_replace_typed_works_too(reviewing, sms):
    reviewer = person(reviewing, sms, OTHER_REVIEWER)
    first_ref = await submitted(person(reviewing, sms, Address("test", "101")))
    await reviewer.say(f"/approve {first_ref}")
    second_ref = await submitted_later(person(reviewing, sms, Address("test", "102")))
    await reviewer.say(f"/approve {second_ref} replace")
    assert (await stored(reviewing, first_ref)).status == "revoked"
    assert (await stored(reviewing, second_ref)).status == "approved"


async def test_the_account_username_is_unique_in_storage(reviewing, sms):
    reviewer = person(reviewing, sms, OTHER_REVIEWER)
    refs = [await submitted_later(person(reviewing, sms, Address("test", uid))) for uid in ("201", "202")]
    await reviewer.say(f"/approve {refs[0]}")
    await reviewing.settle()
    repo = reviewing.repo
    async with repo.transaction():
        taken = await repo.get_registration_by_ref(refs[1])
    taken.account_username = "sch1054530001"
    with pytest.raises(UsernameTaken):
        async with repo.transaction():
            await repo.save_registration(taken, reviewing.clock())
    assert (await stored(reviewing, refs[1])).account_username is None


async def test_a_new_photo_after_a_revocation_is_not_a_new_submission(reviewing, sms):
    first = person(reviewing, sms, Address("test", "101"))
    pdf, first_ref = await submitted_with_letter(first)
    reviewer = person(reviewing, sms, OTHER_REVIEWER)
    await reviewer.say(f"/approve {first_ref}")
    await reviewer.say(f"/approve {await submitted_later(person(reviewing, sms, Address('test', '102')))} replace")
    await send(first, phone_photo(pdf, angle=3))
    assert first.said("status_revoked", ref=first_ref, school=ANSWERS["school_name"])  # not "waiting for review"
    assert (await stored(reviewing, first_ref)).status == "revoked"


async def test_an_account_service_naming_a_taken_username_leaves_the_approval_failed(reviewing, sms, monkeypatch):
    """The account service answers the same username for two schools: the second is not
    recorded under it (usernames are unique), it stays approved, marked failed, and says why."""
    service = FakeService({"username": "nongbua01", "initial_password": "Xy7pQ2mn", "sign_in_url": "https://x"})
    await service.start()
    try:
        reviewing.provisioner = HttpProvisioner(f"{service.url}/accounts", None, "https://fallback")
        reviewer = person(reviewing, sms, OTHER_REVIEWER)
        first_ref = await submitted(person(reviewing, sms, Address("test", "301")))
        await reviewer.say(f"/approve {first_ref}")
        monkeypatch.setitem(ANSWERS, "school_code", "1054530002")  # another school
        second_ref = await submitted_later(person(reviewing, sms, Address("test", "302")))
        await delivered(reviewing, reviewer.say(f"/approve {second_ref}"))
        first, second = await stored(reviewing, first_ref), await stored(reviewing, second_ref)
        assert first.account_username == "nongbua01"
        assert second.status == "approved" and second.account_username is None
        assert second.provision_status == "failed" and "nongbua01" in second.provision_error
    finally:
        await service.stop()
