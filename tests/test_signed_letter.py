"""The signed letter coming back: every kind of photo or file an officer might send."""

from __future__ import annotations

import io
import struct
import zlib

import pillow_heif
import pypdfium2
import pytest
from PIL import Image, ImageDraw

from handlers.letter import letter_data
from handlers.letter_seal import seal
from handlers.messages import Attachment, Kind
from storage import Registration
from templates.letter import render_letter
from tests.helpers import Officer
from tests.phone_photos import signed_page, signed_scan


def letter_pdf(officer: Officer) -> bytes:
    documents = [r.document for r in officer.replies if r.document is not None]
    assert documents, "no letter in the last replies"
    return documents[-1].data


def page_image(pdf: bytes, dpi: int = 150) -> Image.Image:
    document = pypdfium2.PdfDocument(pdf)
    try:
        return document[0].render(scale=dpi / 72).to_pil().convert("RGB")
    finally:
        document.close()


def phone_photo(pdf: bytes, angle: float = 6, megapixels: float = 2, fmt: str = "JPEG", quality: int = 72,
                signed: bool = True) -> bytes:
    """The printed letter, signed (unless told otherwise), as a phone camera gives it: tilted, on a
    desk, scaled, compressed."""
    image = (signed_page(pdf) if signed else page_image(pdf)).rotate(angle, expand=True, fillcolor=(182, 164, 140))
    scale = (megapixels * 1_000_000 / (image.width * image.height)) ** 0.5
    image = image.resize((int(image.width * scale), int(image.height * scale)))
    buffer = io.BytesIO()
    if fmt == "HEIF":
        pillow_heif.from_pillow(image).save(buffer, quality=quality)
    else:
        image.save(buffer, fmt, quality=quality)
    return buffer.getvalue()


def without_qr(pdf: bytes) -> bytes:
    """A photo where the QR code is covered (a thumb, glare, a crop)."""
    image = page_image(pdf)
    # The QR code stands at the top left, under "ที่" (templates/letter_page.py).
    ImageDraw.Draw(image).rectangle((0, 0, image.width * 0.42, image.height * 0.25), fill="white")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


async def at_letter_step(officer: Officer) -> None:
    await officer.up_to("summary")
    await officer.press("confirm")


async def send(officer: Officer, data: bytes, kind: Kind = Kind.PHOTO, filename: str = "photo.jpg") -> None:
    await officer.send(kind, attachment=Attachment(data, filename))


async def state(officer: Officer):
    """(conversation state, registration status, signed letters) as stored."""
    repo = officer.dispatcher.repo
    async with repo.transaction():
        conv = await repo.get_conversation(officer.channel, officer.user_id)
        regs = await repo.registrations_of(officer.channel, officer.user_id)
        letters = [letter for reg in regs for letter in await repo.signed_letters_of(reg.id)]
    return conv.state, [r.status for r in regs], letters


async def test_a_phone_photo_of_the_signed_letter_is_matched_and_submitted(officer: Officer, files, repo):
    await at_letter_step(officer)
    photo = phone_photo(letter_pdf(officer))
    await send(officer, photo)
    conv_state, statuses, letters = await state(officer)
    ref = await _ref(officer)
    assert officer.said("letter_received_matched", ref=ref)
    assert officer.said("ask_submitted", ref=ref, phone="081-234-5678")
    assert (conv_state, statuses) == ("submitted", ["submitted"])
    [letter] = letters
    assert (letter.qr_status, letter.kind, letter.mime_type) == ("matched", "image", "image/jpeg")
    assert letter.size == len(photo)
    assert files.get(letter.path) == photo  # stored whole…
    assert photo[:64] not in (files.root / letter.path).read_bytes()  # …and encrypted
    async with repo.transaction():
        trail = await repo.audit_trail(letter.registration_id)
    assert trail[-1].kind == "submitted" and "QR matched" in trail[-1].detail


async def _ref(officer: Officer) -> str:
    repo = officer.dispatcher.repo
    async with repo.transaction():
        return (await repo.registrations_of(officer.channel, officer.user_id))[-1].ref


@pytest.mark.parametrize("fmt, mime", [("PNG", "image/png"), ("WEBP", "image/webp"), ("HEIF", "image/heic")])
async def test_other_photo_formats(officer: Officer, fmt, mime):
    await at_letter_step(officer)
    await send(officer, phone_photo(letter_pdf(officer), fmt=fmt, quality=85))
    _, statuses, letters = await state(officer)
    assert statuses == ["submitted"] and (letters[0].qr_status, letters[0].mime_type) == ("matched", mime)


async def test_a_pdf_scan_is_read_from_its_first_page(officer: Officer):
    await at_letter_step(officer)
    await send(officer, signed_scan(letter_pdf(officer)), Kind.FILE, "scan.pdf")
    _, statuses, letters = await state(officer)
    assert statuses == ["submitted"] and (letters[0].kind, letters[0].qr_status) == ("pdf", "matched")


async def test_a_photo_without_a_readable_qr_code_is_accepted_unverified(officer: Officer):
    await at_letter_step(officer)
    await send(officer, without_qr(letter_pdf(officer)))
    assert officer.said("letter_received_unverified")
    _, statuses, letters = await state(officer)
    assert statuses == ["submitted"] and letters[0].qr_status == "unverified"


async def test_another_registrations_letter_is_refused(dispatcher, sms):
    first = Officer(dispatcher, sms, user_id="first", phone="0811111111")
    await at_letter_step(first)
    other = Officer(dispatcher, sms, user_id="second", phone="0822222222")
    await at_letter_step(other)
    await send(other, phone_photo(letter_pdf(first)))
    assert other.said("err_letter_other_registration", ref=await _ref(first))
    assert await state(other) == ("letter", ["letter_issued"], [])
    assert await state(first) == ("letter", ["letter_issued"], [])


async def test_an_edited_seal_is_refused(officer: Officer, settings, repo):
    await at_letter_step(officer)
    async with repo.transaction():
        reg = (await repo.registrations_of(officer.channel, officer.user_id))[0]
    forged = letter_data(reg, settings.seal_key)
    good = forged.seal
    forged = type(forged)(**{**forged.__dict__, "seal": good[:-4] + ("AAAA" if good[-4:] != "AAAA" else "BBBB")})
    await send(officer, phone_photo(render_letter(forged)))
    assert officer.said("err_letter_tampered")
    assert await state(officer) == ("letter", ["letter_issued"], [])


async def test_a_seal_made_with_another_key_is_refused(officer: Officer, settings, repo):
    await at_letter_step(officer)
    async with repo.transaction():
        reg = (await repo.registrations_of(officer.channel, officer.user_id))[0]
    forged = letter_data(reg, settings.seal_key)
    forged = type(forged)(**{**forged.__dict__, "seal": seal(b"not our key at all", reg.ref, reg.letter_version)})
    await send(officer, phone_photo(render_letter(forged)))
    assert officer.said("err_letter_tampered")
    assert await state(officer) == ("letter", ["letter_issued"], [])


async def test_the_letter_is_issued_again_after_an_edit_and_the_old_one_is_refused(officer: Officer):
    await at_letter_step(officer)
    first = letter_pdf(officer)
    await officer.press("letter:edit")
    await officer.press("edit:officer_name")
    await officer.say("นางสมศรี ใจดี")
    await officer.press("confirm")
    second = letter_pdf(officer)
    assert officer.replies[-1].document.filename.endswith("-2.pdf")
    await send(officer, phone_photo(first))
    assert officer.said("err_letter_outdated", version=2)
    assert (await state(officer))[2] == []
    await send(officer, phone_photo(second))
    assert (await state(officer))[1] == ["submitted"]


async def test_the_letter_in_hand_stops_counting_once_the_details_are_reopened(officer: Officer):
    await at_letter_step(officer)
    photo = phone_photo(letter_pdf(officer))
    await officer.press("letter:edit")  # reopened; the officer changes nothing yet
    await send(officer, photo)
    assert officer.said("err_letter_details_open", ref=await _ref(officer))
    assert await state(officer) == ("summary", ["letter_issued"], [])
    await officer.press("confirm")  # confirmed again: version 2 is the letter now
    await send(officer, photo)
    assert officer.said("err_letter_outdated", version=2)


async def test_the_letter_can_be_sent_again(officer: Officer):
    await at_letter_step(officer)
    first = letter_pdf(officer)
    await officer.press("letter:again")
    assert letter_pdf(officer).startswith(b"%PDF-") and len(letter_pdf(officer)) == pytest.approx(len(first), rel=0.01)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size in very few bytes: a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\x00" + b"\x00" * (width // 8)
    body = zlib.compress(row * 64, 9)  # only the first rows: the header is what matters
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


@pytest.mark.parametrize("make, kind, key, params", [
    (lambda pdf: b"\xff\xd8\xff\xe0" + b"\x00garbage" * 500, Kind.PHOTO, "err_file_unreadable", {}),
    (lambda pdf: phone_photo(pdf)[:5000], Kind.PHOTO, "err_file_unreadable", {}),
    (lambda pdf: b"%PDF-1.4\nnot really a pdf", Kind.FILE, "err_file_unreadable", {}),
    (lambda pdf: b"MZ\x90\x00" + b"\x00" * 4000, Kind.FILE, "err_file_type", {}),
    (lambda pdf: b"just some text", Kind.FILE, "err_file_type", {}),
    (lambda pdf: b"\xff\xd8" + b"\x00" * (11 * 1024 * 1024), Kind.FILE, "err_file_too_large", {"max_mb": 10}),
    (lambda pdf: png_header_only(10_000, 5_000), Kind.PHOTO, "err_image_too_large", {"max_mp": 40}),
], ids=["corrupt-jpeg", "truncated-jpeg", "corrupt-pdf", "exe", "text-file", "11-MB", "50-megapixel-bomb"])
async def test_a_bad_file_is_explained_and_nothing_is_stored(officer: Officer, files, make, kind, key, params):
    await at_letter_step(officer)
    await send(officer, make(letter_pdf(officer)), kind)
    assert officer.said(key, **params)
    assert "letter:again" in officer.payloads  # the step's buttons come with the explanation
    assert await state(officer) == ("letter", ["letter_issued"], [])
    assert not files.root.exists() or not any(files.root.rglob("*.bin"))


@pytest.mark.parametrize("kind", [Kind.STICKER, Kind.TEXT, Kind.LOCATION, Kind.AUDIO])
async def test_something_else_than_a_photo_at_the_letter_step(officer: Officer, kind):
    await at_letter_step(officer)
    await officer.send(kind, text="ส่งแล้วค่ะ" if kind is Kind.TEXT else "")
    assert officer.said("err_expect_photo")
    assert await state(officer) == ("letter", ["letter_issued"], [])


async def test_a_photo_identical_to_a_rejected_one_is_refused(officer: Officer, repo, clock):
    await at_letter_step(officer)
    photo = phone_photo(letter_pdf(officer))
    await send(officer, photo)
    _, _, [letter] = await state(officer)
    async with repo.transaction():  # what the review (issue #6) records when it rejects
        await repo.reject_signed_letter(letter.id, clock(), "unsigned")
        reg = (await repo.registrations_of(officer.channel, officer.user_id))[0]
        reg.status = "rejected"
        await repo.save_registration(reg, clock())
    await send(officer, photo)
    assert officer.said("err_letter_already_rejected")
    assert len((await state(officer))[2]) == 1
    await send(officer, phone_photo(letter_pdf_of(officer, reg), angle=-4))  # a new photo is fine
    assert (await state(officer))[1] == ["submitted"]


def letter_pdf_of(officer: Officer, reg: Registration) -> bytes:
    return render_letter(letter_data(reg, officer.dispatcher.settings.seal_key))


async def test_a_clearer_photo_may_replace_one_waiting_for_review(officer: Officer):
    await at_letter_step(officer)
    pdf = letter_pdf(officer)
    await send(officer, without_qr(pdf))
    await send(officer, phone_photo(pdf))
    _, statuses, letters = await state(officer)
    assert statuses == ["submitted"] and [x.qr_status for x in letters] == ["unverified", "matched"]


async def test_a_signed_letter_for_the_first_school_while_registering_the_second(officer: Officer):
    await at_letter_step(officer)
    first_letter = letter_pdf(officer)
    await officer.say("/new")
    await officer.press("consent:accept")
    await officer.press("aff:lao")  # now at the school code of the second registration
    await send(officer, phone_photo(first_letter))
    conv_state, statuses, letters = await state(officer)
    assert statuses == ["submitted", "draft"] and letters[0].qr_status == "matched"
    assert conv_state == "school_code" and officer.said("ask_school_code_lao")  # and carries on where it was


async def test_a_photo_without_seal_in_the_middle_of_questions_is_not_taken(officer: Officer):
    await officer.up_to("officer_name")
    await send(officer, without_qr(render_letter_for_test()))
    assert officer.said("expect_text", got="รูปภาพ")
    assert (await state(officer))[2] == []


def render_letter_for_test() -> bytes:
    from tests.test_letter import letter

    return render_letter(letter())
