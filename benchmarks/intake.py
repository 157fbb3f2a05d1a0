"""The intake against simulated phone photos and a hostile PDF. Run by hand:
`python benchmarks/intake.py [--photos 300] [--qr-cm 4.0 2.6]`.

For each QR size: the share of `--photos` phone-like photos of a rendered letter (the generator in
tests/phone_photos.py, seeds 0…N-1: rotation, keystone, blur, JPEG 30–90, light and shadow,
crops) whose QR code is read and names the letter, how many of those only the second try at
twice the size found, and how often the signature check calls a signed letter signed and a
blank one blank (odd seeds are signed). Then the nested-forms PDF (tests/hostile_files.py)
against the PDF worker's limits: refused or not, wall time, CPU seconds and peak memory of the
child, beside the issued letter rendered the same way.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reportlab.lib.units import cm

import templates.letter as letter_template
import templates.letter_page as letter_page
from handlers import attachments, pdf_page, signatures
from tests import phone_photos
from tests.hostile_files import nested_forms_pdf
from tests.test_letter import letter


def photos(qr_cm: float, count: int) -> None:
    letter_page.QR_SIZE = qr_cm * cm  # the one constant the layout reads
    data = letter()
    layout = letter_template.letter_layout(data)
    page = phone_photos.page(layout.pdf)
    expected = signatures.expected_page(layout.pdf)
    matched = retried = 0
    right = {True: 0, False: 0}
    total = {True: 0, False: 0}
    start = time.perf_counter()
    for seed in range(count):
        rng = random.Random(seed)
        signed = seed % 2 == 1
        photo = phone_photos.photograph(phone_photos.sign(page, layout, rng) if signed else page, rng)
        found = attachments.inspect(photo)
        if not isinstance(found, attachments.Inspection) or data.seal not in found.qr_texts:
            continue
        matched += 1
        retried += not attachments._read(found.page, 1.0)
        code = next(c for c in found.qr_codes if c.text == data.seal)
        verdict, _ = signatures.check(found.page, code.corners, layout, expected)
        total[signed] += 1
        right[signed] += verdict == ("signed" if signed else "blank")
    seconds = time.perf_counter() - start
    print(f"QR {qr_cm:.1f} cm: {matched}/{count} photos matched ({matched / count:.1%}); "
          f"{retried} of them only at 2x; {seconds / count * 1000:.0f} ms a photo (made and read)")
    print(f"  signature check on the matched ones: signed told signed {right[True]}/{total[True]}, "
          f"blank told blank {right[False]}/{total[False]}")


def hostile() -> None:
    for name, pdf in (("nested forms", nested_forms_pdf()), ("issued letter", letter_template.render_letter(letter()))):
        start = time.perf_counter()
        result, used = pdf_page.first_page(pdf, attachments.PDF_DPI, attachments.MAX_PIXELS)
        wall = time.perf_counter() - start
        outcome = result.reason if isinstance(result, attachments.Invalid) else f"rendered {result.size}"
        print(f"{name} ({len(pdf):,} bytes): {outcome}; {wall:.2f} s wall, {used.cpu_seconds:.2f} s CPU, "
              f"peak {used.max_rss_bytes / 2**20:.0f} MiB (limits {pdf_page.CPU_SECONDS} s CPU, "
              f"{pdf_page.MEMORY_BYTES / 2**20:.0f} MiB address space)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--qr-cm", type=float, nargs="+", default=[4.0])
    args = parser.parse_args()
    for size in args.qr_cm:
        photos(size, args.photos)
    hostile()


if __name__ == "__main__":
    main()
