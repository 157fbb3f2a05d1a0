"""Phone photos of a printed letter, made up deterministically from a seed: the page lies on a desk
and is photographed at an angle (rotation up to 12°, keystone up to 8%), a little out of focus, in uneven light
with a shadow across it, sometimes cropped at the edges, and saved as a JPEG of quality 30–90.

Used by the intake tests and by benchmarks/qr_photos.py. A "signed" letter has pen strokes drawn
into its signature boxes before it is photographed, as a signatory's scrawl would be.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Sequence

import numpy as np
import pypdfium2
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from templates.letter import LetterLayout

DPI = 150  # the printed page, before the camera
DESK = (182, 164, 140)
INKS = ((20, 30, 120), (15, 15, 20), (30, 60, 170))  # blue and black ballpoint


def page(pdf: bytes, dpi: int = DPI) -> Image.Image:
    document = pypdfium2.PdfDocument(pdf)
    try:
        return document[0].render(scale=dpi / 72).to_pil().convert("RGB")
    finally:
        document.close()


def sign(image: Image.Image, layout: LetterLayout, rng: random.Random, dpi: int = DPI) -> Image.Image:
    """Pen strokes across each signature box: a few loops and a long underline, as people sign."""
    image = image.copy()
    draw = ImageDraw.Draw(image)
    height = layout.page_size[1]
    for x0, y0, x1, y1 in layout.signatures:
        left, right = x0 * dpi / 72, x1 * dpi / 72
        top, bottom = (height - y1) * dpi / 72, (height - y0) * dpi / 72
        width = (right - left) * rng.uniform(0.35, 0.6)
        start = left + (right - left - width) * rng.uniform(0.3, 0.7)
        mid = (top + bottom) / 2
        amplitude = (bottom - top) * rng.uniform(0.25, 0.45)
        loops = rng.uniform(2.5, 5)
        points = [(start + width * t / 80, mid + amplitude * math.sin(t / 80 * loops * 2 * math.pi)
                   * (0.6 + 0.4 * math.sin(t / 13))) for t in range(81)]
        ink = rng.choice(INKS)
        pen = max(2, round(dpi / 72 * rng.uniform(0.8, 1.4)))
        draw.line(points, fill=ink, width=pen, joint="curve")
        draw.line([(start - width * 0.05, mid + amplitude * 1.1), (start + width * 1.05, mid + amplitude * 0.8)],
                  fill=ink, width=pen)
    return image


def _perspective(src: Sequence[tuple[float, float]], dst: Sequence[tuple[float, float]]) -> list[float]:
    """PIL's PERSPECTIVE coefficients mapping each output point `dst` to the input point `src`."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return list(np.linalg.solve(np.array(rows, float), np.array(rhs, float)))


def photograph(image: Image.Image, rng: random.Random) -> bytes:
    """One phone photo of the page `image`, as JPEG bytes."""
    w, h = image.size
    # Crops: up to 4% off any edge (the QR code's corner sometimes loses its margin).
    crop = [rng.uniform(0, 0.04) * w if rng.random() < 0.3 else 0.0 for _ in range(4)]
    image = image.crop((crop[0], crop[1], w - crop[2], h - crop[3]))
    w, h = image.size
    # On a desk, photographed from above at an angle: rotation, keystone (one edge nearer the camera),
    # straight onto 1 to 3 megapixels.
    megapixels = rng.uniform(1, 3)  # what chat apps pass on: Telegram and LINE send about 1.2–2
    factor = (megapixels * 1e6 / (w * 1.25 * h * 1.2)) ** 0.5
    out_w, out_h = int(w * 1.25 * factor), int(h * 1.2 * factor)
    angle = math.radians(rng.uniform(-12, 12))
    keystone = rng.uniform(0, 0.08)
    side = rng.choice((0, 1, 2, 3))
    corners = [(0, 0), (w, 0), (w, h), (0, h)]
    placed = []
    cx, cy = out_w / 2 + rng.uniform(-0.05, 0.05) * out_w, out_h / 2 + rng.uniform(-0.05, 0.05) * out_h
    scale = rng.uniform(0.75, 0.92) * factor
    for i, (x, y) in enumerate(corners):
        dx, dy = (x - w / 2) * scale, (y - h / 2) * scale
        far = {0: i in (0, 1), 1: i in (1, 2), 2: i in (2, 3), 3: i in (3, 0)}[side]
        if far:  # the far edge looks shorter
            if side in (0, 2):
                dx *= 1 - keystone
            else:
                dy *= 1 - keystone
        cos, sin = math.cos(angle), math.sin(angle)
        placed.append((cx + dx * cos - dy * sin, cy + dx * sin + dy * cos))
    photo = image.transform((out_w, out_h), Image.Transform.PERSPECTIVE, _perspective(corners, placed),
                            Image.Resampling.BILINEAR, fillcolor=DESK)
    # Light: brighter on one side, and a soft shadow (a hand, the phone) across part of the page.
    light = np.linspace(rng.uniform(0.65, 0.9), rng.uniform(0.95, 1.05), out_w if rng.random() < 0.5 else out_h)
    light = light[None, :] if light.size == out_w else light[:, None]
    small = (out_w // 8, out_h // 8)
    shade = Image.new("L", small, 255)
    if rng.random() < 0.6:
        x, y = rng.uniform(0, small[0]), rng.uniform(0, small[1])
        r = rng.uniform(0.15, 0.4) * small[0]
        ImageDraw.Draw(shade).ellipse((x - r, y - r * 1.6, x + r, y + r * 1.6), fill=int(255 * rng.uniform(0.55, 0.8)))
        shade = shade.filter(ImageFilter.GaussianBlur(small[0] / 25))
    lighting = np.clip(np.asarray(shade, np.float32) * light[::8, ::8][: small[1], : small[0]] if light.shape[0] == 1
                       else np.asarray(shade, np.float32) * light[::8][: small[1]], 0, 255)
    lighting = Image.fromarray(lighting.astype(np.uint8)).resize((out_w, out_h), Image.Resampling.BILINEAR)
    photo = ImageChops.multiply(photo, Image.merge("RGB", (lighting,) * 3))
    # Slightly out of focus (0 to 1.6 pixels); JPEG 30–90.
    blur = rng.uniform(0, 1.6)
    if blur > 0.3:
        photo = photo.resize((int(out_w / (1 + blur)), int(out_h / (1 + blur))), Image.Resampling.BOX).resize(
            (out_w, out_h), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=rng.randint(30, 90))
    return buffer.getvalue()


def signature_lines(pdf: bytes) -> list[tuple[float, float, float, float]]:
    """Where the letter's "(ลงชื่อ) ……" lines are, in points from the page's bottom left, found in
    its text: for tests that hold only the PDF a chat user received."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        text = document[0].get_textpage()
        search = text.search("ลงชื่อ")
        boxes = []
        while (found := search.get_next()) is not None:
            first, count = found
            left, bottom, _, top = text.get_charbox(first)
            right = text.get_charbox(first + count - 1)[2]
            boxes.append((left, bottom, right, top))
        assert boxes, "no signature line found in the letter"
        return boxes
    finally:
        document.close()


def signed_page(pdf: bytes, rng: random.Random | None = None, dpi: int = DPI) -> Image.Image:
    """The printed letter with both signatures written in, from the PDF alone."""
    rng = rng or random.Random(1)
    document = pypdfium2.PdfDocument(pdf)
    height = document[0].get_size()[1]
    document.close()
    # After "(ลงชื่อ)": the dotted line, and the space above it.
    areas = tuple((right + 6, bottom - 4, right + 150, top + 20) for left, bottom, right, top in signature_lines(pdf))
    layout = LetterLayout(pdf, (0.0, height), (0, 0, 0, 0), areas)
    return sign(page(pdf, dpi), layout, rng, dpi)


def signed_scan(pdf: bytes) -> bytes:
    """The signed letter scanned back into a PDF (a scanner app's single page of pixels)."""
    buffer = io.BytesIO()
    signed_page(pdf).save(buffer, "PDF", resolution=DPI)
    return buffer.getvalue()
