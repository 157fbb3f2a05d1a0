"""The image of the LINE rich menu: four tiles (start, status, send the signed letter, help) on
2500×843 pixels, the compact size LINE takes, drawn with Pillow in Sarabun.

Thai needs shaping (tone marks over vowels): Pillow's raqm layout does it. The caller gives
the labels already chosen (Thai first, English under it); this module draws, it does not
choose words. The tiles' places are `TILES`, which the rich menu's tap areas use too, so the
picture and what a tap does cannot drift apart.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import fontpkg_sarabun
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 2500, 843  # LINE's compact rich menu (it takes 2500×1686 or 2500×843 at full width)
GAP = 24  # px between tiles and around them
ICONS = ("start", "status", "letter", "help")  # in tile order: left to right, top to bottom
GREEN, GREEN_DARK, MINT, INK, GREY = "#0B6E4F", "#08503A", "#E7F3EE", "#17302A", "#4B635B"


@dataclass(frozen=True)
class Tile:
    x: int
    y: int
    width: int
    height: int


def tiles() -> tuple[Tile, ...]:
    """The four tiles, two rows of two, in the order of ICONS."""
    width, height = (WIDTH - 3 * GAP) // 2, (HEIGHT - 3 * GAP) // 2
    return tuple(Tile(GAP + col * (width + GAP), GAP + row * (height + GAP), width, height)
                 for row in range(2) for col in range(2))


TILES = tiles()


@lru_cache(maxsize=8)
def _font(size: int, bold: bool) -> ImageFont.FreeTypeFont:
    name = "Sarabun-Bold.ttf" if bold else "Sarabun-Regular.ttf"
    return ImageFont.truetype(str(fontpkg_sarabun.ROOT / "files" / name), size,
                              layout_engine=ImageFont.Layout.RAQM)


def _fitting(draw: ImageDraw.ImageDraw, text: str, size: int, bold: bool, room: int) -> ImageFont.FreeTypeFont:
    """The largest font at most `size` in which `text` fits in `room` pixels."""
    while size > 24 and draw.textlength(text, font=_font(size, bold), language="th") > room:
        size -= 4
    return _font(size, bold)


def render_rich_menu(labels: list[tuple[str, str]]) -> bytes:
    """The menu as a PNG; `labels` (main, subtitle) for each tile in the order of ICONS."""
    assert len(labels) == len(ICONS)
    image = Image.new("RGB", (WIDTH, HEIGHT), "#FFFFFF")
    draw = ImageDraw.Draw(image)
    for index, (tile, icon, (main, sub)) in enumerate(zip(TILES, ICONS, labels, strict=True)):
        first = index == 0  # "start" stands out: it is where a new officer begins
        fill, ink, soft = (GREEN, "#FFFFFF", "#D4EDE3") if first else (MINT, INK, GREY)
        draw.rounded_rectangle((tile.x, tile.y, tile.x + tile.width, tile.y + tile.height), 48, fill=fill)
        size = int(tile.height * 0.56)  # the icon's disc
        cx, cy = tile.x + 60 + size // 2, tile.y + tile.height // 2
        disc = "#FFFFFF" if first else GREEN
        draw.ellipse((cx - size // 2, cy - size // 2, cx + size // 2, cy + size // 2), fill=disc)
        _ICON_DRAWERS[icon](draw, cx, cy, size, GREEN if first else "#FFFFFF")
        left = tile.x + 60 + size + 50
        room = tile.x + tile.width - 40 - left
        main_font = _fitting(draw, main, 96, True, room)
        sub_font = _fitting(draw, sub, 56, False, room)
        draw.text((left, cy - 8), main, font=main_font, fill=ink, anchor="ls", language="th")
        draw.text((left, cy + 24), sub, font=sub_font, fill=soft, anchor="lt")
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


# --- icons, drawn on a disc of diameter `size` centred at (cx, cy) ---------------------------

def _start(draw: ImageDraw.ImageDraw, cx: int, cy: int, size: int, colour: str) -> None:
    r = size * 0.22  # a "play" triangle, nudged right to look centred
    draw.polygon([(cx - r * 0.8, cy - r * 1.2), (cx - r * 0.8, cy + r * 1.2), (cx + r * 1.3, cy)], fill=colour)


def _status(draw: ImageDraw.ImageDraw, cx: int, cy: int, size: int, colour: str) -> None:
    w, h = size * 0.40, size * 0.50  # a clipboard with ticked lines
    draw.rounded_rectangle((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), 10, outline=colour, width=9)
    for n in range(3):
        y = cy - h / 4 + n * h / 4
        draw.line((cx - w / 2 + 18, y, cx - w / 2 + 30, y + 10, cx - w / 2 + 46, y - 10), fill=colour, width=7)
        draw.line((cx - w / 2 + 58, y, cx + w / 2 - 16, y), fill=colour, width=8)


def _letter(draw: ImageDraw.ImageDraw, cx: int, cy: int, size: int, colour: str) -> None:
    w, h, fold = size * 0.38, size * 0.50, size * 0.12  # a sheet with a folded corner, an arrow out of it
    left, top, right, bottom = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    draw.line((left, top, right - fold, top, right, top + fold, right, bottom, left, bottom, left, top),
              fill=colour, width=9, joint="curve")
    draw.line((right - fold, top, right - fold, top + fold, right, top + fold), fill=colour, width=7)
    draw.line((cx, bottom - 22, cx, top + h * 0.32), fill=colour, width=10)
    draw.polygon([(cx - 26, top + h * 0.40), (cx + 26, top + h * 0.40), (cx, top + h * 0.22)], fill=colour)


def _help(draw: ImageDraw.ImageDraw, cx: int, cy: int, size: int, colour: str) -> None:
    draw.text((cx, cy + 4), "?", font=_font(int(size * 0.62), True), fill=colour, anchor="mm")


_ICON_DRAWERS = {"start": _start, "status": _status, "letter": _letter, "help": _help}
