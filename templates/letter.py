"""The appointment letter (หนังสือแต่งตั้ง) as an A4 PDF, in the style of Thai official letters.

Layout after ระเบียบงานสารบรรณ: 3 cm left and 2 cm right margins, Sarabun 16 pt body,
paragraphs indented 2.5 cm, the date from the middle of the page, Buddhist Era dates and
Thai numerals in the running text. The wording is in `letter.toml`; this module only
places it. A QR code in the top right corner carries the sealed registration reference
(handlers/letter_seal.py) so that the signed photo can be matched to its registration; its
corners also tell where the page is in a photo, so `letter_layout` records where the QR code and
the signature boxes were drawn (handlers/signatures.py looks for ink there).

`render_letter` is blocking (about 30–60 ms): call it from a worker thread.
"""

from __future__ import annotations

import io
import tomllib
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import cm
from reportlab.platypus import Flowable, SimpleDocTemplate, Spacer, Table, TableStyle

from templates.thai_layout import FONT, FONT_BOLD, Style, ThaiParagraph, register_fonts, words

THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")
LEFT, RIGHT, TOP, BOTTOM = 3 * cm, 2 * cm, 1.5 * cm, 1.5 * cm
# 4 cm: phone photos of the whole page (tilted, blurred, compressed, in shadow) read it nine times
# in ten or more, where 2.6 cm read three in four (benchmarks/qr_photos.py).
QR_SIZE = 4.0 * cm

WIDTH = A4[0] - LEFT - RIGHT
# (font size, line spacing) to try, the official 16 pt first: a very long school or officer
# name must not push the signatures onto a second page (one sheet is signed and photographed).
FITS = ((16, 18.5), (16, 17.5), (15, 16.5), (14, 15.5))
SMALL = Style(size=10, leading=12.5, align="left")


@dataclass(frozen=True)
class Styles:
    body: Style
    item: Style
    plain: Style
    date: Style
    title: Style
    centred: Style


def _styles(size: float, leading: float) -> Styles:
    return Styles(
        body=Style(size=size, leading=leading, align="justify", first_indent=2.5 * cm),
        item=Style(size=size, leading=leading, align="left", first_indent=2.5 * cm),
        plain=Style(size=size, leading=leading, align="left"),
        date=Style(size=size, leading=leading, align="left", first_indent=WIDTH / 2 - 1.5 * cm),
        title=Style(font=FONT_BOLD, size=size + 1, leading=leading + 2.5, align="center"),
        centred=Style(size=size, leading=leading, align="center"),
    )


@dataclass(frozen=True)
class LetterData:
    ref: str
    version: int
    affiliation: str  # "obec" | "lao"
    school_code: str
    school_name: str
    province: str
    officer_name: str  # with title, as it is to be printed
    national_id: str  # 13 digits
    phone: str  # E.164
    old_tsl_username: str  # "" when the school had none
    old_kiddiary_username: str
    issued_on: date
    seal: str  # what the QR code carries


Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 in points from the page's bottom left


@dataclass(frozen=True)
class LetterLayout:
    pdf: bytes
    page_size: tuple[float, float]  # points
    qr: Rect
    signatures: tuple[Rect, ...]  # the spaces left for the officer's and the signatory's signatures


class _Marked(Flowable):
    """A flowable drawn as it is, whose place on the page is recorded under `name`."""

    def __init__(self, inner: Flowable, name: str, marks: dict[str, Rect]) -> None:
        super().__init__()
        self.inner, self.name, self.marks = inner, name, marks

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        _, self.height = self.inner.wrap(available_width, available_height)
        self.width = available_width
        return self.width, self.height

    def draw(self) -> None:
        x, y = self.canv.absolutePosition(0, 0)
        self.marks[self.name] = (x, y, x + self.width, y + self.height)
        self.inner.drawOn(self.canv, 0, 0)


@lru_cache(maxsize=1)
def wording() -> dict[str, str]:
    with (Path(__file__).parent / "letter.toml").open("rb") as f:
        return tomllib.load(f)


def thai_digits(text: str) -> str:
    return text.translate(THAI_DIGITS)


def thai_date(day: date) -> str:
    """๑๒ พฤษภาคม ๒๕๖๙: day, month name, Buddhist Era year, in Thai numerals."""
    month = wording()["months"].split()[day.month - 1]
    return thai_digits(f"{day.day} {month} {day.year + 543}")


def _national_id(number: str) -> str:
    return thai_digits(f"{number[0]}-{number[1:5]}-{number[5:10]}-{number[10:12]}-{number[12]}")


def _phone(e164: str) -> str:
    national = "0" + e164.removeprefix("+66")
    return thai_digits(f"{national[:3]}-{national[3:6]}-{national[6:]}")


def _lines(text: str, style: Style) -> list[ThaiParagraph]:
    return [ThaiParagraph(line, style) for line in text.splitlines()]


def _columns(cells: list[object], widths: list[float]) -> Table:
    """Flowables side by side, with no padding: the frame's margins are the letter's margins."""
    table = Table([cells], colWidths=widths)
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        *((side, (0, 0), (-1, -1), 0) for side in ("LEFTPADDING", "RIGHTPADDING", "TOPPADDING", "BOTTOMPADDING")),
    ]))
    return table


def _qr(payload: str, ref: str, marks: dict[str, Rect]) -> list[Flowable]:
    widget = QrCodeWidget(payload, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(QR_SIZE, QR_SIZE, transform=[QR_SIZE / (x1 - x0), 0, 0, QR_SIZE / (y1 - y0), 0, 0])
    drawing.add(widget)
    # The symbol itself lies inside the widget's quiet zone: a reader's corners are the symbol's.
    widget.qr.make()
    quiet = QR_SIZE * widget.barBorder / (widget.qr.getModuleCount() + 2 * widget.barBorder)
    marks["qr_quiet"] = (quiet, quiet, quiet, quiet)
    return [_Marked(drawing, "qr_drawing", marks), ThaiParagraph(ref, Style(size=8, leading=10, align="center"))]


def prepare() -> None:
    """Load the fonts and the word dictionary now (half a second), not in the first officer's turn."""
    register_fonts()
    words("อุ่นเครื่อง")


def render_letter(data: LetterData) -> bytes:
    """The letter as PDF bytes, on one A4 page."""
    return letter_layout(data).pdf


def letter_layout(data: LetterData) -> LetterLayout:
    """The letter, and where its QR code and signature boxes are on the page."""
    register_fonts()
    for size, leading in FITS:
        marks: dict[str, Rect] = {}
        pdf, pages = _build(data, _styles(size, leading), marks)
        if pages == 1:
            break
    return LetterLayout(pdf, A4, _qr_symbol(marks), tuple(
        _union(marks[f"{who}_space"], marks[f"{who}_line"]) for who in ("officer", "signatory")
    ))


def _qr_symbol(marks: dict[str, Rect]) -> Rect:
    x0, _, _, y1 = marks["qr_drawing"]
    quiet = marks["qr_quiet"][0]
    return x0 + quiet, y1 - QR_SIZE + quiet, x0 + QR_SIZE - quiet, y1 - quiet


def _union(a: Rect, b: Rect) -> Rect:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _build(data: LetterData, st: Styles, marks: dict[str, Rect]) -> tuple[bytes, int]:
    w = wording()
    fill = {
        "school_name": data.school_name,
        "school_code": thai_digits(data.school_code),
        "province": data.province,
        "affiliation": w[f"affiliation_{data.affiliation}"],
        "officer_name": data.officer_name,
        "national_id": _national_id(data.national_id),
        "phone": _phone(data.phone),
        "ref": data.ref,
        "version": thai_digits(str(data.version)),
    }
    signatory = w[f"signatory_{data.affiliation}"].format(**fill)
    story = [
        _columns([_lines(w["title"], st.title), _qr(data.seal, data.ref, marks)], [WIDTH - QR_SIZE, QR_SIZE]),
        *_lines(w["number"], st.plain),
        _columns(["", _lines(w["address"].format(**fill), st.centred)], [WIDTH * 0.45, WIDTH * 0.55]),
        Spacer(0, 4),
        ThaiParagraph(thai_date(data.issued_on), st.date),
        Spacer(0, 4),
        ThaiParagraph(w["subject"], st.plain),
        ThaiParagraph(w["to"], st.plain),
        Spacer(0, 4),
        ThaiParagraph(w["purpose"], st.body),
        ThaiParagraph(w["appointment"].format(**fill), st.body),
        ThaiParagraph(w["migration"], st.body),
        ThaiParagraph(w["old_tsl"].format(value=data.old_tsl_username or w["none"]), st.item),
        ThaiParagraph(w["old_kiddiary"].format(value=data.old_kiddiary_username or w["none"]), st.item),
        ThaiParagraph(w["closing"], st.item),
        Spacer(0, 6),
        _columns([
            [*_lines(w["acceptance"], st.centred), _Marked(Spacer(0, 20), "officer_space", marks),
             _Marked(ThaiParagraph(w["officer_signature"], st.centred), "officer_line", marks),
             *_lines(w["officer_name_line"].format(**fill), st.centred)],
            [*_lines(w["regards"], st.centred), _Marked(Spacer(0, 20), "signatory_space", marks),
             _Marked(ThaiParagraph(w["signature"], st.centred), "signatory_line", marks),
             *_lines(w["signature_name"], st.centred), *_lines(signatory, st.centred)],
        ], [WIDTH * 0.45, WIDTH * 0.55]),
    ]

    def decorate(canvas, doc) -> None:
        footer = ThaiParagraph(w["footer"].format(**fill), SMALL)
        _, height = footer.wrapOn(canvas, WIDTH, BOTTOM)
        footer.drawOn(canvas, LEFT, BOTTOM - height - 0.2 * cm)

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=LEFT, rightMargin=RIGHT, topMargin=TOP, bottomMargin=BOTTOM,
        title=w["title"].replace("\n", ""), author=data.school_name, subject=data.ref,
        creator="KidDiary registration assistant", initialFontName=FONT,
    )
    doc.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buffer.getvalue(), doc.page
