"""The letter on its A4 page: where every line goes, and drawing it with searchable text.

Size and leading. The correspondence rules (ระเบียบงานสารบรรณ) assume TH Sarabun PSK 16 pt. The
Sarabun embedded here is Google's, drawn about 1.47 times larger in its em (a Thai consonant
stands 0.586 em against TH Sarabun PSK's 0.400), so 16 pt of it is 23 pt of TH Sarabun and the
page overflows. BODY_SIZES starts at 12 pt (TH Sarabun PSK 17.6 pt: a touch larger than the
rule's 16) and steps down half a point at a time only when a very long name needs the room.
Thai ink reaches from +1.25 em (ฟื้น) to −0.33 em (ู) and further for rare stacks, so lines are
LEADING = 1.65 em apart, and further apart wherever the glyph outlines of two lines would come
closer than INK_GAP: no tone mark can touch the vowel below the line above, whatever the name.

Margins: 3 cm left, 2 cm right, 1.5 cm top and bottom. A 4 cm QR code (QR_SIZE) sits below
"ที่", at the top left, where the Garuda's place would otherwise leave the left half empty; the
address and date take the right half beside it.

Text. Each line is drawn inside a marked-content span whose /ActualText is the line exactly as
written, so pdftotext, pdfium and copy-paste give back that text (ำ not ํ+า, no private-use
characters for ญ ฐ without their tails, no spaces where the justification widened a word gap).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import zxingcpp
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import cm
from reportlab.pdfgen.canvas import Canvas

from templates.thai_layout import FONT, Line, Run, lay_out, register_fonts

if TYPE_CHECKING:
    from templates.letter import Content

PAGE_WIDTH, PAGE_HEIGHT = A4
LEFT, RIGHT, TOP, BOTTOM = 3 * cm, 2 * cm, 1.5 * cm, 1.5 * cm
WIDTH = PAGE_WIDTH - LEFT - RIGHT
QR_SIZE = 4.0 * cm  # the QR code with its quiet zone: large enough to be read from a phone photo
BODY_SIZES = (12.0, 11.5, 11.0, 10.5, 10.0, 9.5, 9.0)  # points, tried in order until the page fits
LEADING = 1.65  # ems between baselines
INK_GAP = 0.1  # ems: the least white between the ink of two lines
FIRST_INK = 1.25  # ems: a column's first baseline sits this far below its top (the tallest usual stack)
INDENT = 2.5 * cm  # a paragraph's first line
SIGN_SPACE = 2.4  # ems of white above a signature line, for the signature itself
SMALL = 0.75  # the QR caption and the footer, relative to the body size


@dataclass(frozen=True)
class Placed:
    """A line on the page: `x` its column's left edge, `baseline` from the top of the page."""

    line: Line
    font: str
    x: float
    baseline: float

    @property
    def text(self) -> str:
        return self.line.text

    @property
    def ink(self) -> tuple[float, float, float, float]:
        """left, top, right, bottom of its ink, in points from the page's top left corner."""
        i = self.line.ink
        return self.x + i.left, self.baseline - i.top, self.x + i.right, self.baseline - i.bottom


@dataclass
class Column:
    """Lines stacked down a column: each baseline LEADING below the one before, and lower still
    when the new line's ink would come within INK_GAP of anything above it."""

    x: float
    width: float
    floor: float  # the lowest ink so far, points from the page's top
    size: float
    baseline: float | None = None
    placed: list[Placed] = field(default_factory=list)

    def paragraph(self, runs: tuple[Run, ...], font: str = FONT, size: float | None = None,
                  align: str = "left", first_indent: float = 0.0) -> None:
        for line in lay_out(runs, font, size or self.size, self.width, align, first_indent):
            self.add(line, font)

    def add(self, line: Line, font: str) -> None:
        ink_top = max(line.ink.top, 0.0)
        if self.baseline is None:
            baseline = self.floor + max(ink_top, FIRST_INK * line.size)
        else:
            baseline = max(self.baseline + LEADING * line.size, self.floor + INK_GAP * line.size + ink_top)
        self.placed.append(Placed(line, font, self.x, baseline))
        self.baseline = baseline
        self.floor = max(self.floor, baseline - min(line.ink.bottom, 0.0))

    def skip(self, points: float) -> None:
        """White space before the next line."""
        self.floor += points
        if self.baseline is not None:
            self.baseline += points

    def box(self, height: float) -> float:
        """Room for a drawing below what is there; returns its top. The next line starts afresh below it."""
        top = self.floor + INK_GAP * self.size if self.placed else self.floor
        self.floor, self.baseline = top + height, None
        return top


def below(columns: list[Column], x: float, width: float) -> Column:
    """A column starting under all of `columns`."""
    baselines = [c.baseline for c in columns if c.baseline is not None]
    return Column(x, width, max(c.floor for c in columns), columns[0].size, max(baselines, default=None))


@dataclass(frozen=True)
class Page:
    size: float  # the body size it fits at
    lines: tuple[Placed, ...]
    qr: tuple[float, float, float]  # left, top (points from the page's top left), side
    signatures: tuple[tuple[float, float, float, float], ...]  # where the two signatures go: left, top, right, bottom
    fits: bool  # everything above the footer, the footer inside the bottom margin


def compose(c: Content) -> Page:
    """The letter laid out at the largest of BODY_SIZES that fits one page. Shaping and word
    segmentation are remembered between sizes and letters: a second try costs only arithmetic."""
    register_fonts()
    for size in BODY_SIZES:
        page = _compose(c, size)
        if page.fits:
            return page
    return page


def _compose(c: Content, size: float) -> Page:
    half = WIDTH / 2
    small = size * SMALL
    # Header: "ที่" and the QR code (its reference under it) on the left; the address and the date on the right.
    left = Column(LEFT, half, TOP, size)
    left.paragraph(c.number)
    qr_top = left.box(QR_SIZE)
    left.width = QR_SIZE
    left.paragraph(c.caption, size=small, align="center")
    right = Column(LEFT + half, half, TOP, size)
    for line in c.address:
        right.paragraph(line)
    right.skip(0.5 * size)
    right.paragraph(c.date)
    # Subject, addressee, body.
    body = below([left, right], LEFT, WIDTH)
    body.skip(0.5 * size)
    body.paragraph(c.subject)
    body.paragraph(c.to)
    body.skip(0.3 * size)
    for paragraph in c.body:
        body.paragraph(paragraph, align="justify", first_indent=INDENT)
    for item in c.items:
        body.paragraph(item, first_indent=INDENT)
    # Signatures: the appointed officer on the left, the signatory on the right.
    body.skip(0.6 * size)
    officer = Column(LEFT, WIDTH * 0.45, body.floor, size, body.baseline)
    signer = Column(LEFT + WIDTH * 0.45, WIDTH * 0.55, body.floor, size, body.baseline)
    boxes = []
    for column, before, after in ((officer, c.acceptance, c.officer), (signer, c.regards, c.signatory)):
        for line in before:
            column.paragraph(line, align="center")
        top = column.floor
        column.skip(SIGN_SPACE * size)
        column.paragraph(after[0], align="center")
        boxes.append((column.x, top, column.x + column.width, column.placed[-1].baseline))
        for line in after[1:]:
            column.paragraph(line, align="center")
    end = max(officer.floor, signer.floor)
    # The footer, at the foot of the frame.
    footer = Column(LEFT, WIDTH, 0.0, small)
    footer.paragraph(c.footer, size=small)
    shift = PAGE_HEIGHT - BOTTOM - footer.floor
    footer_lines = [Placed(p.line, p.font, p.x, p.baseline + shift) for p in footer.placed]
    fits = end + 2 * INK_GAP * size <= min(p.ink[1] for p in footer_lines)
    lines = (*left.placed, *right.placed, *body.placed, *officer.placed, *signer.placed, *footer_lines)
    return Page(size, lines, (LEFT, qr_top, QR_SIZE), tuple(boxes), fits)


def _actual_text(text: str) -> str:
    """A PDF text string: UTF-16BE with its byte-order mark, in hex."""
    return "<FEFF" + text.encode("utf-16-be").hex().upper() + ">"


def draw(page: Page, seal: str, title: str, author: str, subject: str) -> bytes:
    """The page as PDF bytes: every line in a /Span whose /ActualText is the line as written."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, pageCompression=1, initialFontName=FONT)
    canvas.setTitle(title)
    canvas.setAuthor(author)
    canvas.setSubject(subject)
    canvas.setCreator("KidDiary registration assistant")
    for placed in page.lines:
        _draw_line(canvas, placed)
    _draw_qr(canvas, seal, *page.qr)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


QUIET_MODULES = 4  # the light margin a QR code needs on each side, drawn inside QR_SIZE


def _symbol(payload: str) -> memoryview:
    """The QR code (error correction M) as pixels, one a module, 0 = dark."""
    symbol = zxingcpp.create_barcode(payload, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    return memoryview(symbol.to_image(scale=1, add_quiet_zones=False))


def qr_modules(payload: str) -> int:
    """How many modules wide the QR code of `payload` is (its quiet zone left out)."""
    return _symbol(payload).shape[1]


def _draw_qr(canvas: Canvas, payload: str, left: float, top: float, side: float) -> None:
    """The QR code filling `side` with its quiet zone, as one path."""
    image = _symbol(payload)
    rows, cols = image.shape
    pixels = image.tobytes()  # row by row, 0 = dark
    module = side / (cols + 2 * QUIET_MODULES)
    path = canvas.beginPath()
    for r in range(rows):
        row = pixels[r * cols:(r + 1) * cols]
        c = 0
        while c < cols:
            if row[c] < 128:
                start = c
                while c < cols and row[c] < 128:
                    c += 1
                y = PAGE_HEIGHT - top - (QUIET_MODULES + 1 + r) * module
                path.rect(left + (QUIET_MODULES + start) * module, y, (c - start) * module, module)
            c += 1
    canvas.drawPath(path, stroke=0, fill=1)


def _draw_line(canvas: Canvas, placed: Placed) -> None:
    line = placed.line
    y = PAGE_HEIGHT - placed.baseline
    canvas.addLiteral(f"/Span <</ActualText {_actual_text(line.text)}>> BDC")
    text = canvas.beginText()
    text.setFont(placed.font, line.size)
    for x, unit in zip(line.xs, line.units, strict=True):
        text.setTextOrigin(placed.x + x, y)
        text.textOut(unit.shaped.glyphs)
    canvas.drawText(text)
    canvas.addLiteral("EMC")

