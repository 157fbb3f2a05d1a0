"""What a photo or file the officer sent really is, judged by its content, not its name.

`inspect` decodes the bytes (JPEG, PNG, HEIC, WebP, or a PDF whose first page is rendered),
refuses what is too big, a decompression bomb or unreadable, and reads any QR codes on it.
It is blocking (tens of milliseconds for a phone photo): the dispatcher runs it in a worker
thread before the turn, so no database lock is held meanwhile.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass

import pillow_heif
import pypdfium2
import zxingcpp
from PIL import Image, ImageOps

from handlers.validation import Invalid

log = logging.getLogger(__name__)

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "HEIF": "image/heic", "WEBP": "image/webp"}
PDF_DPI = 200  # enough for the letter's 2.6 cm QR code, small enough to stay fast
QR_SIDE = 2500  # larger photos are read at this size first; QR codes survive the shrink

pillow_heif.register_heif_opener()
# We check the pixel count ourselves, before decoding, and refuse with a reason; Pillow's own
# bomb guard would only warn below twice its limit.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class Inspection:
    kind: str  # "image" | "pdf"
    mime_type: str
    sha256: str
    size: int
    qr_texts: tuple[str, ...]


def inspect(data: bytes, declared_size: int | None = None) -> Inspection | Invalid:
    if len(data) > MAX_BYTES or (declared_size or 0) > MAX_BYTES:
        return Invalid("file_too_large", {"max_mb": MAX_BYTES // (1024 * 1024)})
    if not data:
        return Invalid("file_unreadable")
    sha256 = hashlib.sha256(data).hexdigest()
    if data.startswith(b"%PDF-"):
        image = _first_page(data)
        kind, mime = "pdf", "application/pdf"
    else:
        image = _image(data)
        kind = "image"
        mime = IMAGE_FORMATS.get(getattr(image, "format", None) or "", "")
    if isinstance(image, Invalid):
        return image
    return Inspection(kind, mime, sha256, len(data), read_qr_codes(image))


def _image(data: bytes) -> Image.Image | Invalid:
    try:
        image = Image.open(io.BytesIO(data))
    except Exception:  # Pillow raises many kinds for "not an image"
        # A damaged photo is not "the wrong kind of file": say which it is.
        return Invalid("file_unreadable" if _image_signature(data) else "file_type")
    if image.format not in IMAGE_FORMATS:
        return Invalid("file_type")
    width, height = image.size
    if width * height > MAX_PIXELS:  # known from the header, before anything is decoded
        return Invalid("image_too_large", {"max_mp": MAX_PIXELS // 1_000_000})
    try:
        image.load()
    except Exception:
        return Invalid("file_unreadable")
    decoded = ImageOps.exif_transpose(image)  # phones store "rotate me" in EXIF
    decoded.format = image.format
    return decoded


def _image_signature(data: bytes) -> bool:
    """Whether the bytes start like one of the accepted picture formats."""
    return (
        data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"))
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
        or (data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"))
    )


def _first_page(data: bytes) -> Image.Image | Invalid:
    try:
        pdf = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError:
        return Invalid("file_unreadable")
    try:
        if len(pdf) == 0:
            return Invalid("file_unreadable")
        page = pdf[0]
        width, height = page.get_size()  # points
        scale = PDF_DPI / 72
        if width * height * scale * scale > MAX_PIXELS:  # an absurd page size must not render huge
            scale = (MAX_PIXELS / (width * height)) ** 0.5
        return page.render(scale=scale).to_pil()
    except pypdfium2.PdfiumError:
        return Invalid("file_unreadable")
    finally:
        pdf.close()


def read_qr_codes(image: Image.Image) -> tuple[str, ...]:
    """The texts of the QR codes on the image; a large photo is tried shrunk first, then whole."""
    image = image.convert("L")  # zxing reads grey; palette and 16-bit images need converting anyway
    candidates = [image]
    if max(image.size) > QR_SIDE:
        shrunk = image.copy()
        shrunk.thumbnail((QR_SIDE, QR_SIDE))
        candidates.insert(0, shrunk)
    for candidate in candidates:
        found = zxingcpp.read_barcodes(candidate, formats=zxingcpp.BarcodeFormat.QRCode)
        texts = tuple(r.text for r in found if r.text)
        if texts:
            return texts
    return ()
