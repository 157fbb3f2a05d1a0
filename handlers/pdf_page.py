"""The first page of a PDF as a grey image, rendered in a child process with CPU and memory limits.

A PDF is a program: a few kilobytes of nested form objects can make pdfium draw for minutes
and take gigabytes. So the page is never rendered in the bot's own process. `first_page`
starts `python -m handlers.pdf_page`, which lowers its own limits (RLIMIT_CPU, RLIMIT_AS) before
it reads a byte, renders, and writes the pixels back; a child that runs out of either is
killed by the kernel (or fails to allocate) and the PDF is refused as too complex. A wall-clock
timer kills a child that neither finishes nor uses CPU. Starting the child costs about 0.2 s,
paid only for PDFs.
"""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the child imports as little as it can: it starts for every PDF
    from PIL import Image

    from handlers.validation import Invalid

CPU_SECONDS = 3  # a real scan renders in well under a second at 200 dpi
MEMORY_BYTES = 768 * 1024 * 1024  # address space: Python, pdfium and one large embedded scan
WALL_SECONDS = 20  # only for a child stuck without using CPU
_HEADER = struct.Struct(">II")

# Exit codes of the child.
OK, UNREADABLE, ENCRYPTED, EMPTY = 0, 3, 4, 5
_REASONS = {UNREADABLE: "file_unreadable", ENCRYPTED: "pdf_encrypted", EMPTY: "file_unreadable"}
_PASSWORD = 4  # FPDF_ERR_PASSWORD


@dataclass(frozen=True)
class Usage:
    """What the child used: shown by the benchmark, and how the tests see that the limits hold."""

    cpu_seconds: float
    max_rss_bytes: int


def first_page(data: bytes, dpi: float, max_pixels: int) -> tuple[Image.Image | Invalid, Usage]:
    """The first page rendered at `dpi` (less when that would exceed `max_pixels`), grey."""
    from PIL import Image

    from handlers.validation import Invalid

    child = subprocess.Popen(
        [sys.executable, "-m", "handlers.pdf_page", str(dpi), str(max_pixels)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    timer = threading.Timer(WALL_SECONDS, child.kill)
    timer.start()
    try:
        assert child.stdin is not None and child.stdout is not None
        try:
            child.stdin.write(data)  # the child reads everything before it writes anything
            child.stdin.close()
        except BrokenPipeError:
            pass
        out = child.stdout.read()
        child.stdout.close()
        _, status, rusage = os.wait4(child.pid, 0)
    finally:
        timer.cancel()
    child.returncode = code = os.waitstatus_to_exitcode(status)
    usage = Usage(rusage.ru_utime + rusage.ru_stime, rusage.ru_maxrss * 1024)
    if code in _REASONS:
        return Invalid(_REASONS[code]), usage
    if code != OK or len(out) < _HEADER.size:  # killed (SIGXCPU, SIGKILL, SIGSEGV) or out of memory
        return Invalid("pdf_too_complex"), usage
    width, height = _HEADER.unpack_from(out)
    pixels = out[_HEADER.size:]
    if len(pixels) != width * height:
        return Invalid("pdf_too_complex"), usage
    return Image.frombytes("L", (width, height), pixels), usage


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS + 1))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _render(dpi: float, max_pixels: int) -> int:
    import pypdfium2  # after the limits: nothing of the child runs without them

    data = sys.stdin.buffer.read()
    try:
        pdf = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as error:
        return ENCRYPTED if getattr(error, "err_code", None) == _PASSWORD else UNREADABLE
    if len(pdf) == 0:
        return EMPTY
    try:
        page = pdf[0]
        width, height = page.get_size()  # points
        scale = dpi / 72
        if width * height * scale * scale > max_pixels:  # an absurd page size must not render huge
            scale = (max_pixels / (width * height)) ** 0.5
        image = page.render(scale=scale, grayscale=True).to_pil().convert("L")
    except pypdfium2.PdfiumError:
        return UNREADABLE
    sys.stdout.buffer.write(_HEADER.pack(image.width, image.height) + image.tobytes())
    sys.stdout.buffer.flush()
    return OK


if __name__ == "__main__":
    _limit()
    try:
        sys.exit(_render(float(sys.argv[1]), int(sys.argv[2])))
    except MemoryError:
        sys.exit(99)
