"""What a photo or file the officer sent really is, judged by its content, not its name.

`inspect` decodes the bytes (JPEG, PNG, HEIC, WebP, or a PDF whose first page is rendered in a
child process with CPU and memory limits: handlers/pdf_page.py), refuses what is too big, too
small to read a page from, a decompression bomb, encrypted or unreadable, and reads any QR codes
on it with their corners (where the page is in the photo: handlers/signatures.py maps the
signature boxes from them). It is blocking (tens of milliseconds for a phone photo, about 0.3 s
for a PDF): the dispatcher runs it in a worker thread before the turn, so no database lock is
held meanwhile.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass

import pillow_heif
import zxingcpp
from PIL import Image, ImageOps

from handlers import pdf_page
from handlers.validation import Invalid

log = logging.getLogger(__name__)

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
# A camera JPEG carrying a second picture (a depth map, a preview) opens as MPO: it is a JPEG.
IMAGE_FORMATS = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "HEIF": "image/heic",
                 "WEBP": "image/webp"}
PDF_DPI = 200  # the letter's QR code at about 10 pixels a module, small enough to stay fast
QR_SIDE = 2500  # larger photos are read at this size first; QR codes survive the shrink
RETRY_SCALE = 2  # nothing found: read once more enlarged (a far, small QR code)
RETRY_PIXELS = 20_000_000  # …unless the enlarged picture would be larger than this
# An A4 page needs about this many pixels on its short side for its text and QR code to be
# legible; thumbnails, 1×1 tracking pixels and strips cut from a photo are refused.
MIN_SIDE = 480

pillow_heif.register_heif_opener()
# We check the pixel count ourselves, before decoding, and refuse with a reason; Pillow's own
# bomb guard would only warn below twice its limit.
Image.MAX_IMAGE_PIXELS = None


Point = tuple[float, float]


@dataclass(frozen=True)
class QrCode:
    text: str
    # The symbol's corners in `Inspection.page`: its top left, top right, bottom right and
    # bottom left as printed, wherever the photo turned them.
    corners: tuple[Point, Point, Point, Point]


@dataclass(frozen=True)
class Inspection:
    kind: str  # "image" | "pdf"
    mime_type: str
    sha256: str
    size: int
    qr_codes: tuple[QrCode, ...]
    page: Image.Image | None = None  # grey, at most QR_SIDE on its long side; what the QR corners refer to
    # Filled in against the letter the QR code names (handlers/letter_check.py): whether the file is
    # the letter exactly as the bot sent it, and whether its signature boxes have ink.
    same_as_issued: bool = False
    signature: str = "unchecked"  # signed | blank | unchecked

    @property
    def qr_texts(self) -> tuple[str, ...]:
        return tuple(code.text for code in self.qr_codes)


def inspect(data: bytes, declared_size: int | None = None) -> Inspection | Invalid:
    if len(data) > MAX_BYTES or (declared_size or 0) > MAX_BYTES:
        return Invalid("file_too_large", {"max_mb": MAX_BYTES // (1024 * 1024)})
    if not data:
        return Invalid("file_unreadable")
    sha256 = hashlib.sha256(data).hexdigest()
    if data.startswith(b"%PDF-"):
        image, _ = pdf_page.first_page(data, PDF_DPI, MAX_PIXELS)
        kind, mime = "pdf", "application/pdf"
    else:
        image = _image(data)
        kind = "image"
        mime = IMAGE_FORMATS.get(getattr(image, "format", None) or "", "")
    if isinstance(image, Invalid):
        return image
    if min(image.size) < MIN_SIDE:
        return Invalid("image_too_small", {"width": image.width, "height": image.height, "min": MIN_SIDE})
    page = image.convert("L")  # zxing reads grey; palette and 16-bit images need converting anyway
    if max(page.size) > QR_SIDE:
        page.thumbnail((QR_SIDE, QR_SIDE))
    return Inspection(kind, mime, sha256, len(data), read_qr_codes(page), page)


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


def read_qr_codes(page: Image.Image) -> tuple[QrCode, ...]:
    """The QR codes on a grey picture, their corners in its coordinates; when none is found, read
    once more at twice the size (a QR code far from the camera has modules of a pixel or two)."""
    found = _read(page, 1.0)
    if not found and page.width * page.height * RETRY_SCALE**2 <= RETRY_PIXELS:
        enlarged = page.resize((page.width * RETRY_SCALE, page.height * RETRY_SCALE), Image.Resampling.BICUBIC)
        found = _read(enlarged, RETRY_SCALE)
    return found


def _read(image: Image.Image, scale: float) -> tuple[QrCode, ...]:
    codes = []
    for result in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode):
        if result.text:
            p = result.position
            points = (p.top_left, p.top_right, p.bottom_right, p.bottom_left)
            codes.append(QrCode(result.text, tuple((c.x / scale, c.y / scale) for c in points)))  # type: ignore[arg-type]
    return tuple(codes)
