"""The intake of returned letters against phone photos, hostile files and the letter sent back unsigned."""

from __future__ import annotations

import io
import random
from dataclasses import replace

import pytest
from PIL import Image
from reportlab.pdfgen.canvas import Canvas

from handlers import attachments, letter_check, pdf_page, signatures
from handlers.dispatch import Dispatcher
from handlers.messages import Address, Kind
from templates.letter import letter_layout
from tests import phone_photos
from tests.helpers import Officer
from tests.hostile_files import nested_forms_pdf
from tests.test_letter import letter
from tests.test_signed_letter import at_letter_step, letter_pdf, send, state

REVIEW_CHAT = Address("test", "review-group")

# Photos made and read in the suite: about 0.2 s each on an idle machine. benchmarks/qr_photos.py runs
# 300 of them (the same generator, seeds 0–299); the suite runs the first 30.
PHOTOS = 30
SIGNATURE_PHOTOS = 8  # half signed, half blank


def _layout():
    return letter_layout(letter())


def test_phone_photos_of_the_letter_are_matched_nine_times_in_ten():
    layout = _layout()
    page = phone_photos.page(layout.pdf)
    sealed = letter().seal
    matched = 0
    for seed in range(PHOTOS):
        rng = random.Random(seed)
        photo = phone_photos.photograph(phone_photos.sign(page, layout, rng), rng)
        found = attachments.inspect(photo)
        assert isinstance(found, attachments.Inspection)
        matched += sealed in found.qr_texts
    assert matched / PHOTOS >= 0.9, f"{matched} of {PHOTOS} photos matched"


def test_a_small_qr_code_is_read_on_the_second_try_at_twice_the_size():
    layout = _layout()
    page = phone_photos.page(layout.pdf, dpi=100)
    # Shrunk so that the QR code's modules are about a pixel: this size zxing misses as it is.
    grey = page.resize((234, 331), Image.Resampling.BILINEAR).convert("L")
    assert attachments._read(grey, 1.0) == ()  # not found as it is…
    assert [c.text for c in attachments.read_qr_codes(grey)] == [letter().seal]  # …found enlarged


def test_signature_boxes_are_told_signed_or_blank_in_phone_photos():
    layout = _layout()
    page = phone_photos.page(layout.pdf)
    expected = signatures.expected_page(layout.pdf)
    verdicts = {}
    for seed in range(SIGNATURE_PHOTOS):
        rng = random.Random(1000 + seed)
        signed = seed % 2 == 1
        photo = phone_photos.photograph(phone_photos.sign(page, layout, rng) if signed else page, rng)
        found = attachments.inspect(photo)
        assert isinstance(found, attachments.Inspection) and found.qr_codes and found.page is not None
        verdicts[seed] = (signed, signatures.check(found.page, found.qr_codes[0].corners, layout, expected)[0])
    assert all(verdict == ("signed" if signed else "blank") for signed, verdict in verdicts.values()), verdicts


def test_a_box_cut_off_the_photo_is_not_called_blank():
    layout = _layout()
    page = phone_photos.page(layout.pdf)
    top = page.crop((0, 0, page.width, page.height // 2))  # the QR code, but no signatures
    found = attachments.inspect(_jpeg(top))
    assert isinstance(found, attachments.Inspection) and found.page is not None
    verdict, _ = signatures.check(found.page, found.qr_codes[0].corners, layout, signatures.expected_page(layout.pdf))
    assert verdict == "unchecked"


def test_the_nested_forms_pdf_is_stopped_by_the_limits():
    hostile = nested_forms_pdf()
    assert len(hostile) < 8 * 1024
    image, used = pdf_page.first_page(hostile, attachments.PDF_DPI, attachments.MAX_PIXELS)
    assert image == attachments.Invalid("pdf_too_complex")
    assert used.cpu_seconds <= pdf_page.CPU_SECONDS + 1  # the kernel stopped it at its CPU limit…
    assert used.max_rss_bytes <= pdf_page.MEMORY_BYTES  # …or at its memory limit, never beyond
    letter_image, used = pdf_page.first_page(_layout().pdf, attachments.PDF_DPI, attachments.MAX_PIXELS)
    assert isinstance(letter_image, Image.Image) and letter_image.size == (1654, 2339)  # a real PDF renders


def _jpeg(image: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _encrypted_pdf() -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, encrypt="secret")
    canvas.drawString(100, 700, "signed letter")
    canvas.save()
    return buffer.getvalue()


def _mpo(pdf: bytes) -> bytes:
    """A camera JPEG with a second picture in it (Multi-Picture Object): what Pillow opens as MPO."""
    image = phone_photos.signed_page(pdf).rotate(3, expand=True, fillcolor=phone_photos.DESK)
    buffer = io.BytesIO()
    image.save(buffer, "MPO", save_all=True, append_images=[image.resize((image.width // 4, image.height // 4))],
               quality=85)
    assert Image.open(io.BytesIO(buffer.getvalue())).format == "MPO"
    return buffer.getvalue()


@pytest.mark.parametrize("make, kind, key, params", [
    (lambda pdf: nested_forms_pdf(), Kind.FILE, "err_pdf_too_complex", {}),
    (lambda pdf: _encrypted_pdf(), Kind.FILE, "err_pdf_encrypted", {}),
    (lambda pdf: _jpeg(Image.new("RGB", (1, 1), "white")), Kind.PHOTO, "err_image_too_small",
     {"width": 1, "height": 1, "min": attachments.MIN_SIDE}),
    (lambda pdf: _jpeg(phone_photos.page(pdf).resize((300, 424))), Kind.PHOTO, "err_image_too_small",
     {"width": 300, "height": 424, "min": attachments.MIN_SIDE}),
    (lambda pdf: pdf, Kind.FILE, "err_letter_unsigned_copy", {}),
], ids=["nested-forms-pdf", "encrypted-pdf", "1x1", "thumbnail", "the-letter-itself"])
async def test_a_refused_file_is_explained_and_nothing_is_stored(officer: Officer, files, make, kind, key, params):
    await at_letter_step(officer)
    await send(officer, make(letter_pdf(officer)), kind, "letter.pdf" if kind is Kind.FILE else "photo.jpg")
    assert officer.said(key, **params)
    assert "letter:again" in officer.payloads  # the step's buttons come with the explanation
    assert await state(officer) == ("letter", ["letter_issued"], [])
    assert not files.root.exists() or not any(files.root.rglob("*.bin"))


async def test_a_camera_mpo_jpeg_is_taken_as_a_jpeg(officer: Officer):
    await at_letter_step(officer)
    await send(officer, _mpo(letter_pdf(officer)))
    _, statuses, [stored] = await state(officer)
    assert statuses == ["submitted"]
    assert (stored.kind, stored.mime_type, stored.qr_status, stored.signature) == ("image", "image/jpeg", "matched",
                                                                                  "signed")


async def test_a_photo_of_the_unsigned_letter_is_taken_but_the_officer_is_asked_again(reviewing_officer):
    officer, reviewer_chat = reviewing_officer
    await at_letter_step(officer)
    pdf = letter_pdf(officer)
    rng = random.Random(7)
    await send(officer, phone_photos.photograph(phone_photos.page(pdf), rng))
    ref = await _ref(officer)
    assert officer.said("letter_received_blank", ref=ref)
    assert not officer.said("letter_received_matched", ref=ref)
    _, statuses, [blank] = await state(officer)
    assert statuses == ["submitted"] and (blank.signature, blank.number) == ("blank", 1)
    card = _card_to(officer, reviewer_chat)
    assert "ช่องลงนามในรูปฉบับที่ 1 ดูเหมือนว่าง" in card
    # Signed this time: taken as it is, and the card no longer warns.
    await send(officer, phone_photos.photograph(phone_photos.signed_page(pdf, rng), rng))
    assert officer.said("letter_received_matched", ref=ref)
    _, statuses, letters = await state(officer)
    assert [(x.signature, x.number) for x in letters] == [("blank", 1), ("signed", 2)]
    assert "ดูเหมือนว่าง" not in _card_to(officer, reviewer_chat)


async def test_signed_letters_are_numbered_per_registration(dispatcher, sms, repo):
    first = Officer(dispatcher, sms, user_id="first", phone="0811111111")
    await at_letter_step(first)
    await send(first, phone_photos.photograph(phone_photos.signed_page(letter_pdf(first)), random.Random(1)))
    second = Officer(dispatcher, sms, user_id="second", phone="0822222222")
    await at_letter_step(second)
    pdf = letter_pdf(second)
    await send(second, phone_photos.photograph(phone_photos.signed_page(pdf), random.Random(2)))
    await send(second, phone_photos.photograph(phone_photos.signed_page(pdf), random.Random(3)))
    async with repo.transaction():
        [reg] = await repo.registrations_of(second.channel, second.user_id)
        letters = await repo.signed_letters_of(reg.id)
        trail = await repo.audit_trail(reg.id)
    assert [x.number for x in letters] == [1, 2] and [x.id for x in letters] == [2, 3]  # its own count, not the ids
    assert [e.detail for e in trail if e.kind == "submitted"] == [
        "signed letter 1, QR matched, signature signed", "signed letter 2, QR matched, signature signed"]


async def test_a_letter_whose_seal_names_no_registration_is_left_unchecked(repo, settings):
    layout = _layout()  # sealed with another key, for a registration this database does not have
    found = attachments.inspect(phone_photos.photograph(phone_photos.page(layout.pdf), random.Random(5)))
    assert isinstance(found, attachments.Inspection) and found.qr_codes
    checked = await letter_check.against_letter(repo, settings, found)
    assert (checked.signature, checked.same_as_issued) == ("unchecked", False)


async def _ref(officer: Officer) -> str:
    repo = officer.dispatcher.repo
    async with repo.transaction():
        return (await repo.registrations_of(officer.channel, officer.user_id))[-1].ref


def _card_to(officer: Officer, chat) -> str:
    cards = [r.text for r in officer.replies if r.to == chat]
    assert cards, "no card in the review chat"
    return cards[-1]


@pytest.fixture
def reviewing_officer(dispatcher: Dispatcher, settings, sms) -> tuple[Officer, Address]:
    """An officer whose submissions are announced in a review chat."""
    dispatcher.settings = replace(settings, review_chats=(REVIEW_CHAT,))
    return Officer(dispatcher, sms), REVIEW_CHAT
