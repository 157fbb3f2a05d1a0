"""The letter's cost: time to generate one, its size, and time to read the QR code back from a
2-megapixel phone photo. Run by hand: `python benchmarks/letter.py [--runs 40]`.

Targets (issue #3): letter ≤ 60 ms median and ≤ 80 KB; QR read ≤ 100 ms. Baselines measured in
the same run: reportlab making a one-line PDF (its fixed cost), and decoding the photo without
looking for a QR code.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pypdfium2
from PIL import Image
from reportlab.pdfgen import canvas as pdf_canvas

from handlers.attachments import inspect, read_qr_codes
from handlers.letter_seal import seal
from templates.letter import LetterData, render_letter
from templates.thai_layout import FONT, register_fonts


def median_ms(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def one_line_pdf() -> bytes:
    buffer = io.BytesIO()
    canvas = pdf_canvas.Canvas(buffer)
    canvas.setFont(FONT, 16)
    canvas.drawString(72, 720, "KidDiary")
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
    key = b"benchmark-key-0123456789abcdef"
    data = LetterData(
        ref="KD-7K3M-9Q2X", version=1, affiliation="obec", school_code="1054530001",
        school_name="โรงเรียนบ้านหนองบัว (ประชาสามัคคี)", province="แพร่", officer_name="นางสาวสมศรี ใจดี",
        national_id="1234545678781", phone="+66812345678", old_tsl_username="tsl1234", old_kiddiary_username="",
        issued_on=date(2026, 11, 28), seal=seal(key, "KD-7K3M-9Q2X", 1),
    )
    start = time.perf_counter()
    register_fonts()
    pdf = render_letter(data)  # first letter: fonts and the word dictionary load here, once
    first_ms = (time.perf_counter() - start) * 1000

    baseline_ms = median_ms(one_line_pdf, runs)
    letter_ms = median_ms(lambda: render_letter(data), runs)
    photo = phone_photo(pdf)
    decode_ms = median_ms(lambda: Image.open(io.BytesIO(photo)).convert("L"), runs)
    qr_ms = median_ms(lambda: read_qr_codes(Image.open(io.BytesIO(photo))), runs)
    inspect_ms = median_ms(lambda: inspect(photo), runs)
    width, height = Image.open(io.BytesIO(photo)).size

    print(f"first letter in a process (fonts, dictionary): {first_ms:7.1f} ms")
    print(f"one-line PDF (baseline):                       {baseline_ms:7.1f} ms median")
    print(f"letter:                                        {letter_ms:7.1f} ms median "
          f"({letter_ms / baseline_ms:.1f}× baseline; target ≤ 60 ms)")
    print(f"letter size:                                   {len(pdf) / 1024:7.1f} KB (target ≤ 80 KB)")
    print(f"photo {width}×{height} ({width * height / 1e6:.1f} MP, {len(photo) // 1024} KB JPEG):")
    print(f"  decode only (baseline):                      {decode_ms:7.1f} ms median")
    print(f"  decode + QR read:                            {qr_ms:7.1f} ms median "
          f"({qr_ms / decode_ms:.1f}× baseline; target ≤ 100 ms)")
    print(f"  whole inspection (checks, hash, QR):         {inspect_ms:7.1f} ms median")
    print(f"runs: {runs}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    main(parser.parse_args().runs)
