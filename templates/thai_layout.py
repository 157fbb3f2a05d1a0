"""Thai lines for the letter: shaped by harfbuzz, broken only where a line may end, justified
within limits. Geometry only; templates/letter_page.py places the lines on the page and draws them.

Why not reportlab's Paragraph: it breaks lines at spaces only (Thai writes a sentence without
them), breaks a long "word" anywhere (cutting syllables apart), and justifies by widening every
gap. Here a paragraph is a list of runs:

- a *kept* run (a name, a code, a date, a number) is one unit: never broken across lines and
  never stretched inside. Only a kept run wider than a whole line is broken, at its own spaces
  first, then between words, never inside a cluster;
- the rest is cut into words by pythainlp's dictionary segmenter (newmm); a line may end at a
  space or between two words, never before a vowel or mark, never after an opening bracket;
- a justified line takes its slack at its spaces first (up to SPACE_STRETCH each), then at the
  word boundaries inside phrases (up to WORD_STRETCH each); when that is not enough it stays
  ragged rather than showing holes.

Each unit is shaped once per process, in em (a size only scales it), with the ink extents of its
glyph outlines, so that the page can space lines by their real ink rather than a guessed leading.
Nothing is inserted into the text: what a line says is exactly what was written.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import fontpkg_sarabun
from reportlab.pdfbase import pdfmetrics, ttfonts
from reportlab.pdfbase.ttfonts import ShapedStr, TTFont, shapeStr

FONT, FONT_BOLD = "Sarabun", "Sarabun-Bold"
# Extra width a justified line may give each gap, in ems: a space may widen by half an em (the
# gap still reads as one space); a word boundary inside a phrase by an eighth (it must not read
# as a space, which in Thai ends a phrase).
SPACE_STRETCH = 0.5
WORD_STRETCH = 0.125
# Ink may stand out of a glyph's advance (the head of โ to the left, ์ to the right) by up to this
# many ems: lines are filled this much short of their width, and such ink is kept inside.
OVERHANG = 0.06

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
    """Give positioned glyph variants a ToUnicode entry, for readers that ignore /ActualText.

    Shaping swaps some marks for variants without a code point (Sarabun's `uni0E48.small`,
    `uni0E0D.descless`, …); reportlab gives them private-use code points. The letter's text is
    carried by /ActualText (letter_page.py); this maps those glyphs back to the characters their
    names spell too, so that even a reader that ignores /ActualText finds no private-use text."""
    original = ttfonts.makeToUnicodeCMap
    if getattr(original, "maps_shaped_glyphs", False):
        return

    def make_to_unicode_cmap(fontname: str, subset: list[int]) -> str:
        cmap = original(fontname, subset)
        font = next((f for f in map(pdfmetrics.getFont, (FONT, FONT_BOLD))
                     if fontname.split("+", 1)[-1].startswith(f.face.name.decode())), None)
        if font is None:
            return cmap
        hb_font = _hb_font(font.fontName)
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


@lru_cache(maxsize=4)
def _hb_font(font: str):  # -> uharfbuzz.Font
    return pdfmetrics.getFont(font).hbFont()


@lru_cache(maxsize=1)
def _tokenizer():
    """pythainlp's newmm segmenter, its dictionary loaded once per process."""
    from pythainlp.tokenize import word_tokenize

    word_tokenize("อุ่นเครื่อง", engine="newmm")  # loads the dictionary now, not in the first letter
    return word_tokenize


@lru_cache(maxsize=1024)
def words(text: str) -> tuple[str, ...]:
    """The text cut at Thai word boundaries (and at spaces, kept as tokens). The letter's fixed
    wording is the same in every letter, so its segmentation is remembered."""
    return tuple(_tokenizer()(text, engine="newmm", keep_whitespace=True))


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


# --- shaping ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ink:
    """A glyph run's ink box in ems from its origin, y up. All zero when nothing is drawn."""

    left: float = 0.0
    bottom: float = 0.0
    right: float = 0.0
    top: float = 0.0

    def union(self, other: Ink, dx: float = 0.0) -> Ink:
        if other.left == other.right:
            return self
        if self.left == self.right:
            return Ink(other.left + dx, other.bottom, other.right + dx, other.top)
        return Ink(min(self.left, other.left + dx), min(self.bottom, other.bottom),
                   max(self.right, other.right + dx), max(self.top, other.top))


@dataclass(frozen=True)
class Shaped:
    text: str  # as written
    glyphs: str  # what the canvas draws: reportlab's ShapedStr (harfbuzz positions), or the text
    advance: float  # ems
    ink: Ink


@lru_cache(maxsize=8192)
def shape(text: str, font: str) -> Shaped:
    """`text` shaped by harfbuzz (through reportlab, which then draws exactly these positions),
    with the ink box of its glyph outlines."""
    register_fonts()
    ttf = pdfmetrics.getFont(font)
    glyphs = shapeStr(text, font, 1000)
    hb_font = _hb_font(font)
    upem = hb_font.face.upem
    if isinstance(glyphs, ShapedStr) and glyphs.__shapeData__:
        placed = [(ch, d.x_offset, d.y_offset, d.x_advance) for ch, d in zip(glyphs, glyphs.__shapeData__, strict=True)]
    else:
        glyphs = text
        placed = [(ch, 0, 0, ttf.stringWidth(ch, 1000)) for ch in text]
    ink, pen = Ink(), 0.0
    for ch, x_offset, y_offset, x_advance in placed:
        gid = ttf.face.charToGlyph.get(ord(ch))
        extents = hb_font.get_glyph_extents(gid) if gid is not None else None
        if extents is not None and extents.width and extents.height:
            left = (pen + x_offset) / 1000 + extents.x_bearing / upem
            top = y_offset / 1000 + extents.y_bearing / upem
            ink = ink.union(Ink(left, top + extents.height / upem, left + extents.width / upem, top))
        pen += x_advance
    return Shaped(text, glyphs, pen / 1000, ink)


@lru_cache(maxsize=4)
def space_width(font: str) -> float:
    """The width of a space, in ems."""
    register_fonts()
    return pdfmetrics.stringWidth(" ", font, 1)


# --- units: what a line is made of -------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """A piece of a paragraph as written. `keep`: a name, code, date or number."""

    text: str
    keep: bool = False


@dataclass(frozen=True)
class Unit:
    shaped: Shaped
    spaces: int  # spaces before it in the text; 0: a word boundary inside a phrase
    keep: bool
    stretch: bool = True  # may justification widen the gap before it (not inside a broken name)

    @property
    def text(self) -> str:
        return self.shaped.text


@lru_cache(maxsize=256)
def units(runs: tuple[Run, ...], font: str) -> tuple[Unit, ...]:
    """The paragraph as units a line may end between (every unit but the first may start a line).
    What may not be separated (a vowel from its consonant, a bracket from its word, a kept run)
    is one unit."""
    parts: list[list] = []  # [text, spaces before, keep]
    spaces = 0

    def add(text: str, keep: bool) -> None:
        nonlocal spaces
        if parts and ((not spaces and not break_allowed(parts[-1][0], text)) or (spaces and text[0] in _NO_LINE_START)):
            parts[-1][0] += " " * spaces + text
            parts[-1][2] = parts[-1][2] or keep
        else:
            parts.append([text, spaces if parts else 0, keep])
        spaces = 0

    for run in runs:
        if run.keep:
            text = run.text.strip(" ")
            spaces += len(run.text) - len(run.text.lstrip(" "))
            if text:
                add(text, True)
            spaces += len(run.text) - len(run.text.rstrip(" ")) if text else 0
            continue
        for token in words(run.text):
            if token.isspace():
                spaces += len(token)
            else:
                add(token, False)
    return tuple(Unit(shape(text, font), n, keep) for text, n, keep in parts)


def _split(unit: Unit, font: str) -> list[Unit]:
    """A unit wider than a whole line, in smaller units: at its spaces, else between its words,
    else between clusters. Only ever used for a run that cannot fit on any line."""
    text = unit.text
    if " " in text:
        pieces = text.split(" ")
        spaces = [unit.spaces] + [1] * (len(pieces) - 1)
        out, pending = [], 0
        for piece, n in zip(pieces, spaces, strict=True):
            if piece:
                out.append(Unit(shape(piece, font), n + pending if out else unit.spaces, unit.keep,
                                stretch=not unit.keep if out else unit.stretch))
                pending = 0
            else:
                pending += 1
        return out
    tokens = [t for t in words(text) if not t.isspace()]
    if len(tokens) == 1:
        tokens = clusters(text)
    return [Unit(shape(t, font), unit.spaces if i == 0 else 0, unit.keep, stretch=unit.stretch if i == 0 else False)
            for i, t in enumerate(tokens)]


# --- lines -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    units: tuple[Unit, ...]
    xs: tuple[float, ...]  # where each unit starts, points from the left of the column
    size: float
    ink: Ink  # in points from the line's origin (left of the column, baseline), y up

    @property
    def text(self) -> str:
        """The line as written: its units with the spaces between them."""
        return "".join(" " * u.spaces * bool(i) + u.text for i, u in enumerate(self.units))


def lay_out(
    runs: tuple[Run, ...], font: str, size: float, width: float,
    align: str = "left", first_indent: float = 0.0,
) -> list[Line]:
    """The paragraph broken into lines of at most `width` points (the first `first_indent` less),
    first fit, each line placed by `align` (left, center, right, justify)."""
    space = space_width(font) * size
    full, width = width, width - OVERHANG * size  # room for ink that overhangs its advance (โ, ์)
    rows: list[list[Unit]] = [[]]
    used = first_indent
    pending = list(units(runs, font))
    pending.reverse()
    while pending:
        unit = pending.pop()
        row = rows[-1]
        indent = first_indent if len(rows) == 1 else 0.0
        w = unit.shaped.advance * size
        gap = space * unit.spaces if row else 0.0
        if used + gap + w <= width + 1e-6:
            row.append(unit)
            used += gap + w
            continue
        parts = _split(unit, font) if w > width - (0.0 if row else indent) + 1e-6 else [unit]
        if len(parts) > 1:  # wider than a whole line: broken where it stands, filling this line first
            pending.extend(reversed(parts))
            continue
        if row:  # the line is full: this unit starts the next one
            rows.append(row := [])
            used = indent = 0.0
        row.append(unit)  # (a single cluster wider than the line would overflow it: never seen)
        used = indent + w
    return [_fitted(row, (i == 0 and first_indent) or 0.0, i == len(rows) - 1, size, full, space, align)
            for i, row in enumerate(rows) if row]


def _fitted(row: list[Unit], indent: float, last: bool, size: float, width: float, space: float, align: str) -> Line:
    """The row placed so that its ink, not only its advances, stays inside the column."""
    line = _place(row, indent, last, size, width, space, align)
    left, right = max(0.0, -line.ink.left), max(0.0, line.ink.right - width)
    if left or right:
        line = _place(row, indent + left, last, size, width - left - right, space, align)
    return line


def _place(row: list[Unit], indent: float, last: bool, size: float, width: float, space: float,
           align: str) -> Line:
    natural = sum(u.shaped.advance for u in row) * size + space * sum(u.spaces for u in row[1:])
    slack = width - indent - natural
    space_gaps = sum(1 for u in row[1:] if u.spaces and u.stretch)
    word_gaps = sum(1 for u in row[1:] if not u.spaces and u.stretch)
    extra_space = extra_word = 0.0
    x = indent
    if align == "justify" and not last and slack > 0:
        if slack <= size * (SPACE_STRETCH * space_gaps + WORD_STRETCH * word_gaps) + 1e-6:
            extra_space = min(slack / space_gaps, SPACE_STRETCH * size) if space_gaps else 0.0
            extra_word = (slack - extra_space * space_gaps) / word_gaps if word_gaps else 0.0
    elif align == "center":
        x += slack / 2
    elif align == "right":
        x += slack
    xs, ink = [], Ink()
    for i, unit in enumerate(row):
        if i:
            x += space * unit.spaces + (0.0 if not unit.stretch else extra_space if unit.spaces else extra_word)
        xs.append(x)
        u = unit.shaped.ink
        ink = ink.union(Ink(u.left * size, u.bottom * size, u.right * size, u.top * size), dx=x)
        x += unit.shaped.advance * size
    return Line(tuple(row), tuple(xs), size, ink)
