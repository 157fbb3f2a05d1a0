"""Free text as typed on a phone, made comparable before validation: Thai digits become 0-9,
spaces, dashes and zero-width characters leave numbers, Unicode is NFC, Thai marks are in the
order they are printed in."""

from __future__ import annotations

import re
import unicodedata

from pythainlp.util import normalize as thai_normalize

# Characters phones and copy-paste slip into text that the officer never meant to type: zero-width
# characters, and the bidirectional controls (LRM, RLM, embeddings, overrides, isolates) that a
# mixed Thai-English keyboard or a pasted web page leaves. They are removed, not made spaces: a
# space would split a name or a code where the officer typed none.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_ZERO_WIDTH = dict.fromkeys(map(ord, _INVISIBLE))
# Separators people put inside numbers: spaces of every kind, dashes of every kind, dots.
_NUMBER_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212.()/]+")


def well_formed(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD. JSON can carry one ("\\ud800" in a
    webhook decodes to it) but UTF-8 cannot: stored or sent as it is, it breaks the turn."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def clean_text(text: str) -> str:
    """No zero-width, bidi or control characters, Thai marks in their standard order, runs of
    white space folded, trimmed, NFC.

    Phone keyboards let "นำ้" be typed (sara am before the tone mark): it looks the same on
    screen but is printed wrongly and compares unequal to "น้ำ". pythainlp's normalize puts the
    tone mark first, drops a doubled mark or vowel and a mark left dangling after a space. NFC
    comes last: a character taken out may have kept a letter and its mark apart ("e\u200b\u0301"),
    and the result must be what cleaning it again gives."""
    text = text.translate(_ZERO_WIDTH)
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text)
    return " ".join(unicodedata.normalize("NFC", thai_normalize(text)).split())


def ascii_digits(text: str) -> str:
    """Thai digits ๐–๙, full-width and other Unicode decimal digits become 0–9."""
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)


def compact_number(text: str) -> str:
    """A number as digits (and a leading +), whatever separators or digit script were used."""
    return _NUMBER_SEPARATORS.sub("", ascii_digits(clean_text(text)))


def fold(text: str) -> str:
    """A form for comparing typed words with labels: cleaned, case-folded, no trailing dots."""
    return clean_text(text).casefold().rstrip(".")
