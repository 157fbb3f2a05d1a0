"""Whether the signature boxes on a photographed letter have ink in them.

The QR code's corners, read from the photo, and its place on the page (recorded when the letter
was laid out: templates.letter.letter_layout) give an affine map from the page to the photo.
That map is good near the QR code but drifts towards the bottom of the page when the photo has
keystone, so it is refined against the letter as issued (rendered here): the photo is pulled
into page coordinates at low resolution, blocks of printed text are found in it by
cross-correlation, and a homography is fitted to where they were found. Each signature box, with
a margin, is then pulled out of the photo at full working resolution and aligned once more on
what is printed around it. What is dark in the photo and not printed there, after lighting is
evened out, is ink: a box with less than `MIN_INK` of its area inked is blank.

Blocking (tens of milliseconds): run it in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from templates.letter import LetterLayout

WORK_DPI = 100  # page pixels for the comparison: a pen stroke is still 2–3 pixels wide
SEARCH = 12  # page pixels (3 mm) a box may still be off after the refined map
MARGIN = 20  # printed context around each box for the alignment
COARSE = 2  # the refinement works at WORK_DPI / COARSE
BLOCK = 48  # coarse pixels: the blocks of text matched to refine the map…
BLOCK_SEARCH = 40  # …each looked for this far (2 cm) from where the QR code's map puts it
MIN_INK = 0.005  # share of a box's pixels: a signature covers 3–8% of it, an empty box under 0.05%
SIGNED, BLANK, UNCHECKED = "signed", "blank", "unchecked"

Point = tuple[float, float]


@dataclass(frozen=True)
class BoxInk:
    ink: float  # share of the box's pixels inked beyond what is printed; -1: not in the photo


def expected_page(pdf: bytes) -> Image.Image:
    """The letter as issued, grey, at WORK_DPI (our own PDF: rendered here, not in a sandbox)."""
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    try:
        return document[0].render(scale=WORK_DPI / 72, grayscale=True).to_pil().convert("L")
    finally:
        document.close()


def check(photo: Image.Image, corners: tuple[Point, Point, Point, Point], layout: LetterLayout,
          expected: Image.Image) -> tuple[str, tuple[BoxInk, ...]]:
    """SIGNED when every box has ink, BLANK when one has none, UNCHECKED when a box is not in
    the photo (cropped off) or the QR code's corners make no sense."""
    affine = _page_to_photo(corners, layout)
    if affine is None:
        return UNCHECKED, ()
    mapping = _refined(photo, np.vstack([affine.T, [0, 0, 1]]), expected)
    boxes = tuple(_ink(photo, mapping, _page_pixels(box, layout), expected) for box in layout.signatures)
    if any(b.ink < 0 for b in boxes):
        return UNCHECKED, boxes
    return (SIGNED if all(b.ink >= MIN_INK for b in boxes) else BLANK), boxes


def _page_pixels(rect: tuple[float, float, float, float], layout: LetterLayout) -> tuple[int, int, int, int]:
    """A rectangle in PDF points (from the bottom) as page pixels at WORK_DPI (from the top)."""
    s, height = WORK_DPI / 72, layout.page_size[1]
    x0, y0, x1, y1 = rect
    return round(x0 * s), round((height - y1) * s), round(x1 * s), round((height - y0) * s)


def _page_to_photo(corners: tuple[Point, ...], layout: LetterLayout) -> np.ndarray | None:
    x0, y0, x1, y1 = _page_pixels(layout.qr, layout)
    page = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]], float)
    photo = np.array(corners, float)
    affine, *_ = np.linalg.lstsq(page, photo, rcond=None)  # 3×2: [x y 1] @ affine = [u v]
    side = np.linalg.norm(photo[1] - photo[0])
    if not side or np.abs(page @ affine - photo).max() > 0.15 * side:  # not a square: a misread
        return None
    return affine


def _warp(photo: Image.Image, mapping: np.ndarray, origin: tuple[float, float], size: tuple[int, int],
          step: float = 1.0) -> Image.Image:
    """The part of the photo that `mapping` (page pixels → photo pixels) sends the page rectangle
    at `origin` to, as `size` pixels of `step` page pixels each."""
    placed = mapping @ np.array([[step, 0, origin[0]], [0, step, origin[1]], [0, 0, 1]], float)
    placed = placed / placed[2, 2]
    return photo.transform(size, Image.Transform.PERSPECTIVE, tuple(placed.flatten()[:8]),
                           Image.Resampling.BILINEAR, fillcolor=255)


def _refined(photo: Image.Image, mapping: np.ndarray, expected: Image.Image) -> np.ndarray:
    """`mapping` corrected by a homography fitted to where blocks of printed text are found."""
    size = (expected.width // COARSE, expected.height // COARSE)
    seen = _dark(_warp(photo, mapping, (0, 0), size, COARSE), 7)
    printed = np.asarray(expected.resize(size, Image.Resampling.BOX), float) < 200
    sources, targets = [], []
    for y in range(BLOCK_SEARCH, size[1] - BLOCK - BLOCK_SEARCH, BLOCK):
        for x in range(BLOCK_SEARCH, size[0] - BLOCK - BLOCK_SEARCH, BLOCK):
            block = printed[y: y + BLOCK, x: x + BLOCK]
            if block.mean() < 0.04:
                continue
            window = seen[y - BLOCK_SEARCH: y + BLOCK + BLOCK_SEARCH, x - BLOCK_SEARCH: x + BLOCK + BLOCK_SEARCH]
            (dx, dy), score = _best_shift(window, block, BLOCK_SEARCH)
            if score >= 0.5 * block.sum():
                sources.append((x + BLOCK / 2, y + BLOCK / 2))
                targets.append((x + BLOCK / 2 + dx - BLOCK_SEARCH, y + BLOCK / 2 + dy - BLOCK_SEARCH))
    correction = _homography(np.array(sources, float), np.array(targets, float))
    if correction is None:
        return mapping
    scale = np.diag([COARSE, COARSE, 1.0])
    return mapping @ scale @ correction @ np.linalg.inv(scale)


def _homography(sources: np.ndarray, targets: np.ndarray) -> np.ndarray | None:
    """Least squares, twice: the blocks more than 3 pixels off the first fit (a misfound block)
    are left out of the second. None with too few blocks to trust."""
    keep = np.ones(len(sources), bool)
    matrix = None
    for _ in range(2):
        if keep.sum() < 8:
            return matrix
        rows, rhs = [], []
        for (x, y), (u, v) in zip(sources[keep], targets[keep], strict=True):
            rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
            rhs += [u, v]
        h, *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
        matrix = np.append(h, 1).reshape(3, 3)
        mapped = np.c_[sources, np.ones(len(sources))] @ matrix.T
        error = np.linalg.norm(mapped[:, :2] / mapped[:, 2:] - targets, axis=1)
        keep = error <= 3
    return matrix


def _ink(photo: Image.Image, mapping: np.ndarray, box: tuple[int, int, int, int], expected: Image.Image) -> BoxInk:
    bx0, by0, bx1, by1 = box
    inside = np.array([[bx0, by0, 1], [bx1, by0, 1], [bx1, by1, 1], [bx0, by1, 1]], float) @ mapping.T
    inside = inside[:, :2] / inside[:, 2:]
    if (inside < 0).any() or (inside[:, 0] > photo.width).any() or (inside[:, 1] > photo.height).any():
        return BoxInk(-1.0)
    pad = MARGIN + SEARCH
    size = (bx1 - bx0 + 2 * pad, by1 - by0 + 2 * pad)
    dark = _dark(_warp(photo, mapping, (bx0 - pad, by0 - pad), size))
    template = np.asarray(expected.crop((bx0 - MARGIN, by0 - MARGIN, bx1 + MARGIN, by1 + MARGIN)), float) < 160
    (dx, dy), _ = _best_shift(dark, template, SEARCH)
    # The box itself, at the found place; what is printed there (a little fattened) is not ink.
    seen = dark[dy + MARGIN: dy + MARGIN + by1 - by0, dx + MARGIN: dx + MARGIN + bx1 - bx0]
    printed = Image.fromarray((template[MARGIN:-MARGIN, MARGIN:-MARGIN] * 255).astype(np.uint8))
    printed = np.asarray(printed.filter(ImageFilter.MaxFilter(5))) > 0
    return BoxInk(float((seen & ~printed).mean()))


def _dark(patch: Image.Image, reach: int = 15) -> np.ndarray:
    """Pixels much darker than the paper around them: lighting and shadows divided out."""
    paper = patch.filter(ImageFilter.MaxFilter(reach)).filter(ImageFilter.BoxBlur(reach // 2))
    return np.asarray(patch, float) < 0.8 * np.maximum(np.asarray(paper, float), 1)


def _best_shift(dark: np.ndarray, template: np.ndarray, search: int) -> tuple[tuple[int, int], float]:
    """Where `template` lies in `dark` (offsets 0…2·search each way), by FFT cross-correlation,
    and how many of its inked pixels are inked there."""
    shape = dark.shape
    spectrum = np.fft.rfft2(dark.astype(float), shape) * np.conj(np.fft.rfft2(template.astype(float), shape))
    correlation = np.fft.irfft2(spectrum, shape)[: 2 * search + 1, : 2 * search + 1]
    dy, dx = np.unravel_index(int(np.argmax(correlation)), correlation.shape)
    return (int(dx), int(dy)), float(correlation[dy, dx])
