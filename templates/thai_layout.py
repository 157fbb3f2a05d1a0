"""Thai paragraphs for reportlab: shaped by harfbuzz, broken only between words.

reportlab's own Paragraph breaks lines at spaces, and breaks a long "word" anywhere.
Thai writes a sentence without spaces, so it would cut syllables apart (ก|าร); and
without shaping, tone marks collide with upper vowels (ที่). Here a paragraph is cut
into words by pythainlp's dictionary segmenter (newmm), lines are filled word by word
with widths measured on the shaped text, and justified lines spread their slack over
the word boundaries. Nothing is inserted into the text: no zero-width spaces to show up.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, replace
from functools import lru_cache

import fontpkg_sarabun
from reportlab.pdfbase import pdfmetrics, ttfonts
from reportlab.pdfbase.ttfonts import ShapedStr, TTFont, shapeStr
from reportlab.platypus import Flowable

FONT, FONT_BOLD = "Sarabun", "Sarabun-Bold"
# A justified line spreads its slack over its word boundaries, as word processors justify Thai;
# past this much extra per boundary (in ems) the gaps would show, and the line stays ragged.
MAX_STRETCH = 0.35

# Characters that may not start a line: they belong to the consonant before them.
_NO_LINE_START = set("ะัาำิีึืฺุู็่้๊๋์ํ๎ๅๆฯ") | set(")]},.:;!?%")
# Characters that may not end a line: they belong to what follows.
_NO_LINE_END = set("เแโใไ([{")


@lru_cache(maxsize=1)
def register_fonts() -> tuple[str, str]:
    """Register Sarabun with reportlab once per process; return (regular, bold) names."""
    files = fontpkg_sarabun.ROOT / "files"
    pdfmetrics.registerFont(TTFont(FONT, str(files / "Sarabun-Regular.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(files / "Sarabun-Bold.ttf")))
    if not pdfmetrics.getFont(FONT).shapable:
        raise RuntimeError("uharfbuzz is not installed: Thai tone marks would collide with vowels")
    _map_shaped_glyphs_to_text()
    return FONT, FONT_BOLD


def _map_shaped_glyphs_to_text() -> None:
    """Make text copied or extracted from the PDF read as typed.

    Shaping swaps some tone marks and vowels for positioned variants (Sarabun's
    `uni0E48.small`, `uni0E4D0E48`, …) that have no code point; reportlab gives them
    private-use code points, so the PDF's ToUnicode map said U+E000 where ที่ has ่.
    This wraps reportlab's ToUnicode builder to map those glyphs back to the characters
    their names spell (the tone mark first, as it is typed)."""
    original = ttfonts.makeToUnicodeCMap
    if getattr(original, "maps_shaped_glyphs", False):
        return

    def make_to_unicode_cmap(fontname: str, subset: list[int]) -> str:
        cmap = original(fontname, subset)
        font = next((f for f in map(pdfmetrics.getFont, (FONT, FONT_BOLD))
                     if fontname.split("+", 1)[-1].startswith(f.face.name.decode())), None)
        if font is None:
            return cmap
        hb_font = font.hbFont()
        for code, value in enumerate(subset):
            if 0xE000 <= value < 0xF900 and (gid := font.face.charToGlyph.get(value)) is not None:
                chars = _chars_of_glyph(hb_font.glyph_to_string(gid))
                if chars:
                    hex_chars = "".join(f"{ord(ch):04X}" for ch in chars)
                    cmap = cmap.replace(f"<{code:02X}> <{value:04X}>", f"<{code:02X}> <{hex_chars}>")
        return cmap

    make_to_unicode_cmap.maps_shaped_glyphs = True  # type: ignore[attr-defined]
    ttfonts.makeToUnicodeCMap = make_to_unicode_cmap


def _chars_of_glyph(name: str) -> str:
    """`uni0E4D0E48.narrow` → "่ํ": the characters a glyph name spells, tone marks first."""
    base = name.split(".", 1)[0]
    if not base.startswith("uni") or (len(base) - 3) % 4:
        return ""
    chars = [chr(int(base[i:i + 4], 16)) for i in range(3, len(base), 4)]
    return "".join(sorted(chars, key=lambda ch: ch not in "\u0e48\u0e49\u0e4a\u0e4b"))


@lru_cache(maxsize=1)
def _tokenizer():
    """pythainlp's newmm segmenter, its dictionary loaded once per process."""
    from pythainlp.tokenize import word_tokenize

    word_tokenize("อุ่นเครื่อง", engine="newmm")  # loads the dictionary now, not in the first letter
    return word_tokenize


def words(text: str) -> list[str]:
    """The text cut at Thai word boundaries (and at spaces, kept as tokens)."""
    return _tokenizer()(text, engine="newmm", keep_whitespace=True)


def _letter_or_mark(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LM"


def break_allowed(before: str, after: str) -> bool:
    """May a line end between these two adjacent tokens (no space between them)?
    Only between two words: never inside a number, before closing punctuation or after opening."""
    a, b = before[-1], after[0]
    if a in _NO_LINE_END or b in _NO_LINE_START:
        return False
    return _letter_or_mark(a) and _letter_or_mark(b)


def clusters(text: str) -> list[str]:
    """Grapheme-like clusters: a base character with the marks and following vowels on it."""
    out: list[str] = []
    for ch in text:
        if out and (unicodedata.category(ch) in ("Mn", "Mc") or ch in "ะาำๅ"):
            out[-1] += ch
        else:
            out.append(ch)
    return out


@dataclass(frozen=True)
class Style:
    font: str = FONT
    size: float = 16
    leading: float = 22
    align: str = "justify"  # justify | left | center | right
    first_indent: float = 0
    space_before: float = 0
    space_after: float = 0


@dataclass
class Piece:
    source: str  # the text as written
    shaped: str  # as drawn: a ShapedStr when shaping changed anything
    width: float
    spaces: int  # how many spaces separated it from the previous piece


@dataclass
class Line:
    space: float  # the width of a space in the paragraph's font
    indent: float = 0
    pieces: list[Piece] = field(default_factory=list)
    last: bool = False  # the paragraph's last line is never stretched

    @property
    def width(self) -> float:
        return sum(p.width for p in self.pieces) + sum(self.space * p.spaces for p in self.pieces[1:])

    @property
    def text(self) -> str:
        return "".join(" " * (p.spaces if i else 0) + p.source for i, p in enumerate(self.pieces))


def _shape(text: str, font: str, size: float) -> tuple[str, float]:
    shaped = shapeStr(text, font, size)
    if isinstance(shaped, ShapedStr) and shaped.__shapeData__:
        return shaped, sum(d.x_advance for d in shaped.__shapeData__) * size / 1000
    return text, pdfmetrics.stringWidth(text, font, size)


def chunks(text: str) -> list[tuple[str, int]]:
    """(unbreakable run, spaces before it) pairs: a line may end only between two of them."""
    out: list[tuple[str, int]] = []
    spaces = 0
    for token in words(text):
        if token.isspace():
            spaces += len(token)
            continue
        if out and not spaces and not break_allowed(out[-1][0], token):
            out[-1] = (out[-1][0] + token, out[-1][1])
        else:
            out.append((token, spaces))
        spaces = 0
    return out


def lay_out(text: str, style: Style, width: float) -> list[Line]:
    space = pdfmetrics.stringWidth(" ", style.font, style.size)
    lines = [Line(space, indent=style.first_indent)]
    for run, spaces in chunks(text):
        piece = Piece(run, *_shape(run, style.font, style.size), spaces=spaces)
        line = lines[-1]
        room = width - line.indent - line.width - (space * spaces if line.pieces else 0)
        if piece.width <= room or (not line.pieces and piece.width <= width - line.indent):
            line.pieces.append(piece)
            continue
        if line.pieces:
            lines.append(line := Line(space))
        if piece.width <= width:
            line.pieces.append(replace(piece, spaces=0))
            continue
        # One run wider than the line (a long URL or name): cut between clusters, never inside one.
        for cluster in clusters(run):
            part = Piece(cluster, *_shape(cluster, style.font, style.size), spaces=0)
            if line.pieces and line.width + part.width > width:
                lines.append(line := Line(space))
            line.pieces.append(part)
    lines[-1].last = True
    return [line for line in lines if line.pieces]


class ThaiParagraph(Flowable):
    """A platypus flowable: one paragraph of Thai (or mixed) text in one font."""

    def __init__(self, text: str, style: Style) -> None:
        super().__init__()
        self.text, self.style = text, style
        self.lines: list[Line] = []
        self._laid_out_for: float | None = None

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        if self._laid_out_for != available_width:
            self.lines = lay_out(self.text, self.style, available_width)
            self._laid_out_for = available_width
        self.width = available_width
        return available_width, len(self.lines) * self.style.leading

    def getSpaceBefore(self) -> float:
        return self.style.space_before

    def getSpaceAfter(self) -> float:
        return self.style.space_after

    def split(self, available_width: float, available_height: float) -> list[Flowable]:
        self.wrap(available_width, available_height)
        fit = int(available_height // self.style.leading)
        if fit <= 0 or fit >= len(self.lines):
            return []
        head, tail = ThaiParagraph(self.text, self.style), ThaiParagraph(self.text, self.style)
        head.lines, tail.lines = self.lines[:fit], self.lines[fit:]
        head._laid_out_for = tail._laid_out_for = available_width
        head.lines[-1] = replace(head.lines[-1], last=False)
        return [head, tail]

    def draw(self) -> None:
        canvas, style = self.canv, self.style
        canvas.setFont(style.font, style.size)
        # The baseline sits a little above the bottom of the line box, like reportlab's own.
        y = len(self.lines) * style.leading - style.size
        for line in self.lines:
            self._draw_line(line, y)
            y -= style.leading

    def _draw_line(self, line: Line, y: float) -> None:
        style, available = self.style, self.width - line.indent
        slack = available - line.width
        gaps = len(line.pieces) - 1
        stretch = 0.0
        x = line.indent
        if style.align == "justify" and not line.last and gaps and slack / gaps <= style.size * MAX_STRETCH:
            stretch = slack / gaps
        elif style.align == "center":
            x += slack / 2
        elif style.align == "right":
            x += slack
        text = self.canv.beginText(x, y)
        text.setFont(style.font, style.size)
        for i, piece in enumerate(line.pieces):
            if i:
                x += line.space * piece.spaces + stretch
                text.setTextOrigin(x, y)
            text.textOut(piece.shaped)
            x += piece.width
        self.canv.drawText(text)
