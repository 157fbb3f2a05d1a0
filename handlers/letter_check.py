"""A returned letter held against the letter the bot issued: is it that very file, unsigned, and
does its photo have ink in the signature boxes?

Runs after `attachments.inspect` and before the turn's transaction (the dispatcher calls
`against_letter`), because it needs the registration the QR seal names, to lay out its letter
again and see where the boxes are: the rendering and the image work (a few hundred milliseconds)
go to a worker thread, and only a short read holds the database. Whatever goes wrong here leaves
the file unchecked rather than refused: the reviewer still looks at every letter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import numpy as np
from PIL import Image, ImageFilter

from handlers import signatures
from handlers.attachments import Inspection, QrCode
from handlers.letter import letter_data
from handlers.letter_seal import Seal, unseal
from handlers.turn import CoreSettings
from storage import Registration, Repository
from templates.letter import LetterData, LetterLayout, letter_layout

log = logging.getLogger(__name__)

# A PDF is the one issued when, both pages softened (the same text rendered at two resolutions differs
# in its anti-aliasing), less than this share of their pixels differ by more than DIFFERENT grey levels.
SAME_PAGE = 0.001
DIFFERENT = 32


async def against_letter(repo: Repository, settings: CoreSettings, inspection: Inspection) -> Inspection:
    """`inspection` with `same_as_issued` and `signature` filled in, when its QR seal names a
    registration whose current letter it is; unchanged otherwise (the turn says why)."""
    found = _sealed(settings.seal_key, inspection.qr_codes)
    if found is None or inspection.page is None:
        return inspection
    seal, code = found
    async with repo.transaction():
        reg = await repo.get_registration_by_ref(seal.ref)
    if not _current(reg, seal):
        return inspection
    assert reg is not None
    try:
        same, signature = await asyncio.to_thread(_check, letter_data(reg, settings.seal_key), inspection, code)
    except Exception:  # a checker bug must not stop a letter from coming in
        log.exception("signature check of a letter for %s failed", seal.ref)
        return inspection
    return dataclasses.replace(inspection, same_as_issued=same, signature=signature)


def _sealed(key: bytes, codes: tuple[QrCode, ...]) -> tuple[Seal, QrCode] | None:
    for code in codes:
        seal = unseal(key, code.text)
        if isinstance(seal, Seal):
            return seal, code
    return None


def _current(reg: Registration | None, seal: Seal) -> bool:
    return (reg is not None and reg.letter_version == seal.version and reg.letter_issued_at is not None
            and reg.confirmed_at is not None)


def _check(data: LetterData, inspection: Inspection, code: QrCode) -> tuple[bool, str]:
    """(the file is the issued PDF itself, the signature verdict)."""
    assert inspection.page is not None
    layout = letter_layout(data)
    expected = signatures.expected_page(layout.pdf)
    verdict, _ = signatures.check(inspection.page, code.corners, layout, expected)
    same = inspection.kind == "pdf" and verdict == signatures.BLANK and _same_page(inspection.page, expected, layout)
    return same, verdict


def _same_page(page: Image.Image, expected: Image.Image, layout: LetterLayout) -> bool:
    """Whether a PDF's first page, as rendered, is the issued letter: same shape, and the same
    pixels but for anti-aliasing."""
    width, height = layout.page_size
    if abs(page.width / page.height - width / height) > 0.01:
        return False
    soften = ImageFilter.GaussianBlur(2)
    seen = np.asarray(page.resize(expected.size, Image.Resampling.BOX).filter(soften), float)
    issued = np.asarray(expected.filter(soften), float)
    return float((np.abs(seen - issued) > DIFFERENT).mean()) < SAME_PAGE
