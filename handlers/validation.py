"""Validation of every answer the officer types.

Each validator takes the raw text and returns either the clean value to store or an
`Invalid` naming the reason; `templates/texts.toml` turns the reason (`err_<reason>`)
into a sentence the officer can act on. Rules come from well-kept libraries where one
exists: python-stdnum for the national ID, phonenumbers for mobile numbers, pythainlp's
province list.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import phonenumbers
from stdnum import exceptions as stdnum_errors
from stdnum.th import pin

from handlers.normalize import clean_text, compact_number, fold

MAX_MESSAGE_LENGTH = 1000  # longer messages are refused before any step sees them
# Characters as received, checked before anything else touches the text: cleaning and parsing
# cost time in proportion to the length (a megabyte held the event loop for half a second), and
# nothing anyone types needs more than LINE's own limit for one message (an admin's broadcast is
# at most 2,000 characters).
MAX_RAW_LENGTH = 5000
MAX_PAYLOAD_LENGTH = 300  # a button's data: LINE allows 300 characters, Telegram 64 bytes


@dataclass(frozen=True)
class Invalid:
    reason: str  # template key suffix: err_<reason>
    params: dict[str, Any] = field(default_factory=dict)


# --- national ID (เลขประจำตัวประชาชน) -------------------------------------------------

def national_id(text: str) -> str | Invalid:
    number = compact_number(text)
    try:
        return pin.validate(number)
    except stdnum_errors.InvalidLength:
        return Invalid("nid_length", {"count": len(number)})
    except stdnum_errors.InvalidFormat:
        return Invalid("nid_format")
    except stdnum_errors.InvalidComponent:
        return Invalid("nid_first_digit")
    except stdnum_errors.InvalidChecksum:
        return Invalid("nid_checksum")


def mask_national_id(number: str) -> str:
    """`1-2345-xxxxx-xx-1`: enough to recognise, not enough to reuse."""
    return f"{number[0]}-{number[1:5]}-xxxxx-xx-{number[12]}"


# --- mobile phone ---------------------------------------------------------------------

def thai_mobile(text: str) -> str | Invalid:
    """A Thai mobile number in E.164 (+66…), typed as 08…, +66… or 66…."""
    number = compact_number(text)
    if number.startswith("66") and len(number) == 11:
        number = "+" + number
    if not re.fullmatch(r"\+?\d{9,12}", number):
        return Invalid("phone_format")
    try:
        parsed = phonenumbers.parse(number, "TH")
    except phonenumbers.NumberParseException:
        return Invalid("phone_format")
    if parsed.country_code != 66:
        return Invalid("phone_not_thai")
    if not phonenumbers.is_valid_number(parsed):
        return Invalid("phone_format")
    if phonenumbers.number_type(parsed) != phonenumbers.PhoneNumberType.MOBILE:
        return Invalid("phone_not_mobile")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def local_phone(e164: str) -> str:
    """+66812345678 → 081-234-5678, the way Thai officers write it."""
    national = "0" + e164.removeprefix("+66")
    return f"{national[:3]}-{national[3:6]}-{national[6:]}"


def mask_phone(e164: str) -> str:
    national = "0" + e164.removeprefix("+66")
    return f"{national[:2]}x-xxx-{national[6:]}"


# --- officer's name ------------------------------------------------------------------

# Longest first, so that นางสาว is not read as นาง + สาว….
TITLES: tuple[str, ...] = tuple(sorted((
    "นาย", "นาง", "นางสาว", "น.ส.", "ว่าที่ร้อยตรี", "ว่าที่ร้อยตรีหญิง", "ว่าที่ ร.ต.", "ว่าที่ร.ต.",
    "ว่าที่ ร.ต.หญิง", "ดร.", "ผศ.", "รศ.", "ศ.", "ผศ.ดร.", "รศ.ดร.", "จ่าสิบเอก", "จ.ส.อ.", "สิบเอก",
    "ส.อ.", "พ.ต.", "ร.ต.อ.", "Mr.", "Mr", "Mrs.", "Mrs", "Ms.", "Ms", "Miss", "Dr.", "Dr",
), key=len, reverse=True))

_LETTER = "\u0e01-\u0e2e\u0e30-\u0e3a\u0e40-\u0e4eA-Za-z"  # Thai consonants, vowels, tone marks; Latin
# A word starts with a consonant, a vowel written before it (เ แ โ ใ ไ) or a Latin letter, never
# with a mark or vowel that belongs after a consonant.
_WORD_START = "\u0e01-\u0e2e\u0e40-\u0e44A-Za-z"
_NAME_PART = re.compile(f"^[{_WORD_START}][{_LETTER}.'\\-]*$")
MAX_NAME_PART = 50


@dataclass(frozen=True)
class OfficerName:
    title: str
    first_name: str
    last_name: str

    def __str__(self) -> str:
        # Thai titles are written against the first name; English ones with a space.
        gap = " " if self.title[-1].isascii() else ""
        return f"{self.title}{gap}{self.first_name} {self.last_name}"


def officer_name(text: str) -> OfficerName | Invalid:
    text = clean_text(text)
    titles = [t for t in TITLES if text.casefold().startswith(t.casefold())]
    if not titles:
        return Invalid("name_no_title")
    # The longest title that leaves a name starting as a word can: "นางสาวิตรี ใจดี" is นาง สาวิตรี
    # (นางสาว would leave "ิตรี", a vowel with no consonant).
    title = next((t for t in titles if re.match(f"[{_WORD_START}]", text[len(t):].lstrip())), titles[0])
    rest = text[len(title):]
    if title.isascii() and rest and not rest.startswith(" "):
        return Invalid("name_no_title")  # "Mrsmith" is not Mr + smith
    parts = rest.split()
    if len(parts) < 2:
        return Invalid("name_missing_last")
    first, last = parts[0], " ".join(parts[1:])
    if not all(_NAME_PART.match(p) for p in parts):
        return Invalid("name_chars")
    if len(first) > MAX_NAME_PART or len(last) > MAX_NAME_PART:
        return Invalid("name_length", {"max": MAX_NAME_PART})
    return OfficerName(title, first, last)


# --- old usernames -------------------------------------------------------------------

NONE_WORDS = frozenset({"ไม่มี", "ไม่เคยมี", "ไม่ทราบ", "none", "no", "-", "n/a", "ไม่"})
TSL_MAX_LENGTH = 8
KIDDIARY_LENGTH = (3, 64)


def is_none_answer(text: str) -> bool:
    return fold(text) in NONE_WORDS


def tsl_username(text: str) -> str | Invalid:
    """The old Thai School Lunch login: TSL allowed at most 8 English letters or digits."""
    name = clean_text(text)
    if " " in name:
        return Invalid("tsl_chars")
    if not re.fullmatch(r"[A-Za-z0-9]+", name):
        return Invalid("tsl_chars")
    if len(name) > TSL_MAX_LENGTH:
        return Invalid("tsl_length", {"max": TSL_MAX_LENGTH, "count": len(name)})
    return name


def kiddiary_username(text: str) -> str | Invalid:
    name = clean_text(text)
    low, high = KIDDIARY_LENGTH
    if " " in name:
        return Invalid("kd_spaces")
    if not name.isprintable() or any(unicodedata.category(ch) == "So" for ch in name):
        return Invalid("kd_chars")
    if not low <= len(name) <= high:
        return Invalid("kd_length", {"min": low, "max": high, "count": len(name)})
    return name


# --- school --------------------------------------------------------------------------

# OBEC schools are known by their 10-digit DMC code (or the older 8-digit SMIS code);
# local-government schools and child development centres by codes of 5 to 12 digits
# in the DLA's systems. The directory import, when present, checks the exact code.
SCHOOL_CODE_LENGTHS: dict[str, tuple[int, ...]] = {
    "obec": (8, 10),
    "lao": tuple(range(5, 13)),
}
SCHOOL_NAME_LENGTH = (3, 150)
_SCHOOL_NAME_PUNCTUATION = set(" ()-./,'&\"")


def school_code(text: str, affiliation: str) -> str | Invalid:
    code = compact_number(text)
    if not code.isdigit():
        return Invalid("code_digits")
    lengths = SCHOOL_CODE_LENGTHS[affiliation]
    if len(code) not in lengths:
        return Invalid(f"code_length_{affiliation}", {"count": len(code)})
    return code


def school_name(text: str) -> str | Invalid:
    name = clean_text(text)
    low, high = SCHOOL_NAME_LENGTH
    if not low <= len(name) <= high:
        return Invalid("school_name_length", {"min": low, "max": high})
    if not any(ch.isalpha() for ch in name):
        return Invalid("school_name_chars")
    for ch in name:
        if ch not in _SCHOOL_NAME_PUNCTUATION and unicodedata.category(ch)[0] not in "LMN":
            return Invalid("school_name_chars")
    return name


@lru_cache(maxsize=1)
def _provinces() -> dict[str, str]:
    """Every spelling we accept (Thai name, Thai abbreviation, English name) → Thai name."""
    from pythainlp.corpus import provinces  # loaded once per process

    names: dict[str, str] = {}
    for row in provinces(details=True):
        for key in ("name_th", "abbr_th", "name_en"):
            names[fold(row[key])] = row["name_th"]
    names[fold("กรุงเทพ")] = names[fold("กรุงเทพมหานคร")]
    names[fold("กทม.")] = names[fold("กรุงเทพมหานคร")]
    return names


def province(text: str) -> str | Invalid:
    """A province as its official Thai name, from any common spelling."""
    name = fold(text)
    for prefix in ("จังหวัด", "จ.", "จ ", "changwat "):
        name = name.removeprefix(prefix)
    name = name.strip()
    known = _provinces()
    if name in known:
        return known[name]
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return Invalid("province_unknown", {"suggestion": known[close[0]] if close else ""})
