"""The letter's cost, case by case, against a plain reportlab Paragraph(shaping=1) of the same text
made in the same run; then its size, and the time to read the QR code back from a phone photo.
Run by hand: `python benchmarks/letter.py [--runs 40]`.

Target: no case above 2× its floor. The floor is what reportlab alone takes to shape, wrap and
draw the same lines as Paragraphs on one page (no QR code, no word segmentation, no /ActualText).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pypdfium2
from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph

from handlers.attachments import inspect, read_qr_codes
from templates.letter import content, render_letter
from templates.letter_page import LEFT, TOP, WIDTH, compose
from templates.thai_layout import FONT, register_fonts
from tests.test_letter import CASES


def median_ms(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def paragraphs_pdf(lines: list[str], size: float) -> bytes:
    """The floor: the same lines as reportlab Paragraphs with harfbuzz shaping, one page."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4)
    style = ParagraphStyle("floor", fontName=FONT, fontSize=size, leading=size * 1.65)
    y = A4[1] - TOP
    for line in lines:
        paragraph = Paragraph(line, style)
        paragraph.shaping = 1
        _, height = paragraph.wrap(WIDTH, A4[1])
        paragraph.drawOn(canvas, LEFT, y - height)
        y -= height
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def phone_photo(pdf: bytes) -> bytes:
    document = pypdfium2.PdfDocument(pdf)
    image = document[0].render(scale=150 / 72).to_pil().convert("RGB")
    document.close()
    image = image.rotate(6, expand=True, fillcolor=(182, 164, 140))
    scale = (2_000_000 / (image.width * image.height)) ** 0.5
    image = image.resize((int(image.width * scale), int(image.height * scale)))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=75)
    return buffer.getvalue()


def main(runs: int) -> None:
    start = time.perf_counter()
    register_fonts()
    render_letter(CASES["obec"])  # fonts and the word dictionary load here, once per process
    print(f"first letter in a process (fonts, dictionary): {(time.perf_counter() - start) * 1000:7.1f} ms")
    print(f"{'case':<15} {'size':>5} {'letter':>9} {'floor':>9} {'ratio':>6} {'PDF':>8}")
    worst = 0.0
    for name, data in CASES.items():
        page = compose(content(data))
        lines = [p.text for p in page.lines]
        pdf = render_letter(data)
        paragraphs_pdf(lines, page.size)
        # Interleaved, so that both see the same load on the machine.
        letter_times, floor_times = [], []
        for _ in range(runs):
            letter_times.append(median_ms(lambda d=data: render_letter(d), 1))
            floor_times.append(median_ms(lambda ls=lines, s=page.size: paragraphs_pdf(ls, s), 1))
        letter_ms, floor_ms = statistics.median(letter_times), statistics.median(floor_times)
        worst = max(worst, letter_ms / floor_ms)
        print(f"{name:<15} {page.size:>5.1f} {letter_ms:>6.1f} ms {floor_ms:>6.1f} ms {letter_ms / floor_ms:>5.2f}× "
              f"{len(pdf) / 1024:>5.1f} KB")
    print(f"worst ratio: {worst:.2f}× the floor (target ≤ 2×)")

    photo = phone_photo(render_letter(CASES["obec"]))
    decode_ms = median_ms(lambda: Image.open(io.BytesIO(photo)).convert("L"), runs)
    qr_ms = median_ms(lambda: read_qr_codes(Image.open(io.BytesIO(photo))), runs)
    inspect_ms = median_ms(lambda: inspect(photo), runs)
    width, height = Image.open(io.BytesIO(photo)).size
    print(f"photo {width}×{height} ({width * height / 1e6:.1f} MP, {len(photo) // 1024} KB JPEG):")
    print(f"  decode only (baseline):              {decode_ms:7.1f} ms median")
    print(f"  decode + QR read:                    {qr_ms:7.1f} ms median ({qr_ms / decode_ms:.1f}× baseline)")
    print(f"  whole inspection (checks, hash, QR): {inspect_ms:7.1f} ms median")
    print(f"runs: {runs}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    main(parser.parse_args().runs)
