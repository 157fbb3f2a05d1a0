"""What a signed link opens: the letter (PDF, or its first page as JPEG: LINE shows images),
a signed letter sent back (as JPEG, for reviewers on LINE), or the admins' progress chart (PNG).

The letter is made on demand from the stored registration, never kept on disk. A link to an
older version of the letter, a cancelled registration, an erased scan or a wrong or expired
token gives None (a 404).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime

import pypdfium2
from PIL import Image, ImageOps

from bot.links import LetterLinks
from handlers import attachments  # noqa: F401 - registers the HEIC opener with Pillow
from handlers.deadline import DEADLINE_KEY
from handlers.letter import letter_data
from handlers.messages import Document
from handlers.review import content_check
from handlers.stats import chart_data
from handlers.turn import BANGKOK
from storage import Repository, SignedLetter, UploadStore
from storage.models import CANCELLED, DRAFT
from templates import LANGUAGES
from templates.chart import render_chart
from templates.letter import render_letter

PAGE_WIDTH = 1240  # px: readable on a phone, well under LINE's 10 MB
PREVIEW_WIDTH = 480  # px: LINE wants the preview under 1 MB


class LetterFiles:
    def __init__(
        self, repo: Repository, seal_key: bytes, links: LetterLinks, clock: Callable[[], datetime],
        files: UploadStore | None = None,
    ) -> None:
        self.repo, self.seal_key, self.links, self.clock, self.files = repo, seal_key, links, clock, files

    async def pdf(self, token: str) -> bytes | None:
        link = self.links.read(token, self.clock())
        if link is None or link.kind != "letter":
            return None
        return await self.letter(link.id, link.version)

    async def letter(self, registration_id: int, version: int) -> bytes | None:
        """The letter of a registration, made now; None when that version is no longer the
        letter (the details were reopened or changed since, or the registration is cancelled)."""
        async with self.repo.transaction():
            reg = await self.repo.get_registration(registration_id)
        if (reg is None or reg.letter_version != version or reg.status in (CANCELLED, DRAFT)
                or reg.confirmed_at is None):
            return None
        return await asyncio.to_thread(render_letter, letter_data(reg, self.seal_key))

    async def signed_file(self, letter_id: int, check: int) -> bytes | None:
        """A signed letter as it was sent back (decrypted); None when it was erased (or its id
        now names another scan: `check` is the one the link was made for)."""
        letter = await self._signed_letter(letter_id, check)
        return None if letter is None else await asyncio.to_thread(self._read, letter.path)

    async def _signed_letter(self, letter_id: int, check: int) -> SignedLetter | None:
        if self.files is None:
            return None
        async with self.repo.transaction():
            letter = await self.repo.get_signed_letter(letter_id)
        return letter if letter is not None and content_check(letter) == check else None

    def _read(self, path: str) -> bytes | None:
        """A stored upload, or None when it is gone (erased between reading its row and its file)."""
        assert self.files is not None
        try:
            return self.files.get(path)
        except FileNotFoundError:
            return None

    async def document(self, document: Document) -> Document | None:
        """A document of the outbox with its bytes, made or read now; None when it is gone."""
        if document.data or document.link is None:
            return document
        kind, ident, version = document.link
        if kind == "chart":
            data: bytes | None = await self.chart(version)
        else:
            data = await (self.letter(ident, version) if kind == "letter" else self.signed_file(ident, version))
        return None if data is None else replace(document, data=data)

    async def chart(self, language: int) -> bytes | None:
        """The progress chart with the figures of now, labelled in LANGUAGES[language]."""
        lang = LANGUAGES[language] if 0 <= language < len(LANGUAGES) else LANGUAGES[0]
        now = self.clock()
        async with self.repo.transaction():
            series = await self.repo.stats.daily()
            target = await self.repo.stats.directory_size()
            deadline = await self.repo.broadcasts.setting(DEADLINE_KEY)
        today = now.astimezone(BANGKOK).date()
        data = chart_data(series, lang, today, target=target or None,
                          deadline=date.fromisoformat(deadline) if deadline else None)
        return await asyncio.to_thread(render_chart, data)

    async def chart_image(self, token: str, preview: bool) -> bytes | None:
        """The chart for LINE (a PNG behind a signed link), or its small preview."""
        link = self.links.read(token, self.clock())
        if link is None or link.kind != "chart":
            return None
        png = await self.chart(link.version)
        return png if png is None or not preview else await asyncio.to_thread(as_png, png, PREVIEW_WIDTH)

    async def image(self, token: str, preview: bool) -> bytes | None:
        pdf = await self.pdf(token)
        if pdf is None:
            return None
        return await asyncio.to_thread(first_page_jpeg, pdf, PREVIEW_WIDTH if preview else PAGE_WIDTH)

    async def signed(self, token: str, preview: bool) -> bytes | None:
        link = self.links.read(token, self.clock())
        if link is None or link.kind != "signed":
            return None
        letter = await self._signed_letter(link.id, link.version)
        if letter is None:
            return None
        data = await asyncio.to_thread(self._read, letter.path)
        if data is None:
            return None
        width = PREVIEW_WIDTH if preview else PAGE_WIDTH
        if letter.kind == "pdf":
            return await asyncio.to_thread(first_page_jpeg, data, width)
        return await asyncio.to_thread(as_jpeg, data, width)


def as_jpeg(data: bytes, width: int) -> bytes:
    """A photo (JPEG, PNG, HEIC, WebP) as a JPEG at most `width` wide, the right way up."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    image.thumbnail((width, width * 2))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85, optimize=True)
    return buffer.getvalue()


def as_png(data: bytes, width: int) -> bytes:
    """An image as a PNG at most `width` wide (the chart's preview on LINE)."""
    image = Image.open(io.BytesIO(data))
    image.thumbnail((width, width * 2))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def first_page_jpeg(pdf: bytes, width: int) -> bytes:
    document = pypdfium2.PdfDocument(pdf)
    try:
        page = document[0]
        image = page.render(scale=width / page.get_width()).to_pil().convert("RGB")
    finally:
        document.close()
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85, optimize=True)
    return buffer.getvalue()
