"""Photos are decoded only at the letter steps and not too often per user (handlers/photo_gate.py).
Downloads go through the attachment's `fetch`, as on LINE and Telegram: a file never fetched
was never decoded."""

from __future__ import annotations

from handlers.messages import Attachment, Kind
from handlers.photo_gate import LIMIT
from templates import text as t
from tests.helpers import Officer
from tests.test_signed_letter import at_letter_step, letter_pdf, phone_photo, state

UNREADABLE = b"\xff\xd8\xff" + b"\x00" * 5000  # starts like a JPEG, decodes to nothing


class Downloads:
    """The platform's side of a download: how many files were fetched."""

    def __init__(self, data: bytes) -> None:
        self.data, self.count = data, 0

    async def fetch(self) -> bytes:
        self.count += 1
        return self.data


async def photo(officer: Officer, downloads: Downloads) -> None:
    await officer.send(Kind.PHOTO, attachment=Attachment(b"", "photo.jpg", fetch=downloads.fetch))


async def test_a_photo_before_the_letter_step_is_neither_downloaded_nor_decoded(officer: Officer, dispatcher, sms):
    downloads = Downloads(UNREADABLE)
    await officer.say("/start")  # consent is asked
    await photo(officer, downloads)
    assert downloads.count == 0
    assert officer.said("expect_text", got=t("kind_photo", "th"))


async def test_a_letter_photo_sent_inline_before_consent_is_not_read(officer: Officer, dispatcher, sms):
    """Someone else's signed letter, sent with the message (the console), by a user with no
    registration: not decoded, so its QR code is never read (reading it would say whose it is)."""
    await at_letter_step(officer)
    pdf = letter_pdf(officer)
    stranger = Officer(dispatcher, sms, user_id="stranger")
    await stranger.say("/start")
    await stranger.send(Kind.PHOTO, attachment=Attachment(phone_photo(pdf), "photo.jpg"))
    assert stranger.said("expect_text", got=t("kind_photo", "th"))
    assert not any("KD-" in r.text for r in stranger.replies)


async def test_photos_are_rate_limited_per_user(officer: Officer, dispatcher, sms, clock):
    await at_letter_step(officer)
    pdf = letter_pdf(officer)
    downloads = Downloads(UNREADABLE)
    for _ in range(LIMIT):
        await photo(officer, downloads)
        assert officer.said("err_file_unreadable")
        clock.advance(seconds=30)
    await photo(officer, downloads)
    assert officer.said("err_photos_too_often", minutes=7)  # the first of the window was 3 minutes ago
    assert downloads.count == LIMIT  # the last one was not even fetched
    conv_state, statuses, letters = await state(officer)
    assert (conv_state, statuses, letters) == ("letter", ["letter_issued"], [])

    other = Officer(dispatcher, sms, user_id="officer-2")  # another user is not held back
    await at_letter_step(other)
    other_downloads = Downloads(UNREADABLE)
    await photo(other, other_downloads)
    assert other_downloads.count == 1 and other.said("err_file_unreadable")

    clock.advance(minutes=7)  # the window has moved on: decoded again, and a real letter is taken
    await officer.send(Kind.PHOTO, attachment=Attachment(phone_photo(pdf), "photo.jpg"))
    assert officer.said("letter_received_matched", ref=await ref_of(officer))


async def ref_of(officer: Officer) -> str:
    async with officer.dispatcher.repo.transaction():
        return (await officer.dispatcher.repo.registrations_of(officer.channel, officer.user_id))[0].ref
