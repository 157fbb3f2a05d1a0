"""The appointment letter (หนังสือแต่งตั้ง): what it says, from a registration.

The wording is in `letter.toml`; this module fills it in and says which pieces are never broken
across lines (names, codes, dates, numbers). templates/letter_page.py places it on one A4 page
and draws it: see there for the size, leading and margins, and why.

`render_letter` is blocking (some tens of milliseconds): call it from a worker thread.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from templates.letter_page import PAGE_HEIGHT, PAGE_WIDTH, QUIET_MODULES, compose, draw, qr_modules
from templates.thai_layout import Run, register_fonts, words

THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")
SCHOOL, CENTRE = "school", "centre"
# {name}: a value from the registration; ⟦…⟧: a fixed phrase kept whole (see letter.toml).
_MARKUP = re.compile(r"⟦(.*?)⟧|\{(\w+)\}")
_KIND_WORDS = {CENTRE: ("ศูนย์พัฒนาเด็ก", "ศพด.", "child development cent"), SCHOOL: ("โรงเรียน", "ร.ร.", "school")}


@dataclass(frozen=True)
class LetterData:
    ref: str
    version: int
    affiliation: str  # "obec" | "lao"
    school_code: str
    school_name: str
    province: str
    officer_name: str  # with title, as it is to be printed
    national_id: str  # 13 digits
    phone: str  # E.164
    old_tsl_username: str  # "" when the school had none
    old_kiddiary_username: str
    issued_on: date
    seal: str  # what the QR code carries
    institution: str = SCHOOL  # who signs: a school's director or a child development centre's head


@lru_cache(maxsize=1)
def wording() -> dict[str, str]:
    with (Path(__file__).parent / "letter.toml").open("rb") as f:
        return tomllib.load(f)


def thai_digits(text: str) -> str:
    return text.translate(THAI_DIGITS)


def thai_date(day: date) -> str:
    """๑๒ พฤษภาคม ๒๕๖๙: day, month name, Buddhist Era year, in Thai numerals."""
    month = wording()["months"].split()[day.month - 1]
    return thai_digits(f"{day.day} {month} {day.year + 543}")


def _national_id(number: str) -> str:
    return thai_digits(f"{number[0]}-{number[1:5]}-{number[5:10]}-{number[10:12]}-{number[12]}")


def _phone(e164: str) -> str:
    national = "0" + e164.removeprefix("+66")
    return thai_digits(f"{national[:3]}-{national[3:6]}-{national[6:]}")


def _is_thai(ch: str) -> bool:
    return "\u0e00" <= ch <= "\u0e7f"


def signatory(institution: str, school_name: str) -> str:
    """The signatory's position: ผู้อำนวยการ + the school, หัวหน้า + the child development centre.
    The institution's kind word is put in when its name lacks it, and a Latin name is set off by a
    space (ผู้อำนวยการ Bangkok Pattana)."""
    w, name = wording(), school_name
    if institution == CENTRE and name.startswith("ศพด."):
        name = w["centre_word"] + name.removeprefix("ศพด.").lstrip()
    position = w[f"position_{institution}"]
    if named_kind(name) != institution:
        position += w[f"{institution}_word"] if institution == CENTRE or _is_thai(name[0]) else ""
    return position + name if _is_thai(name[0]) else f"{position} {name}"


def named_kind(name: str) -> str | None:
    """SCHOOL or CENTRE when the name says which (โรงเรียน…, ศูนย์พัฒนาเด็กเล็ก…, ศพด., … School),
    else None. The word that comes first decides."""
    folded = name.casefold()
    found = [(folded.find(word), kind) for kind, kind_words in _KIND_WORDS.items() for word in kind_words
             if word in folded]
    return min(found)[1] if found else None


def with_kind(name: str, institution: str) -> str:
    """The name with the word that says what it is: โรงเรียน / ศูนย์พัฒนาเด็กเล็ก in front of a
    Thai name, School / Child Development Centre after a Latin one."""
    w = wording()
    if _is_thai(name[0]):
        return w[f"{institution}_word"] + name
    return f"{name} {w[f'{institution}_word_latin']}"


def runs(template: str, fill: dict[str, str]) -> tuple[Run, ...]:
    """A template of letter.toml as runs: placeholders and ⟦…⟧ phrases kept whole."""
    out: list[Run] = []
    at = 0
    for match in _MARKUP.finditer(template):
        if match.start() > at:
            out.append(Run(template[at:match.start()]))
        phrase, name = match.groups()
        out.append(Run(phrase.format(**fill) if phrase is not None else fill[name], keep=True))
        at = match.end()
    if at < len(template):
        out.append(Run(template[at:]))
    return tuple(out)


def plain(paragraph: tuple[Run, ...]) -> str:
    """What a paragraph says, markup gone."""
    return "".join(run.text for run in paragraph)


@dataclass(frozen=True)
class Content:
    """The letter's paragraphs, each as runs, in the order they are placed."""

    number: tuple[Run, ...]
    address: tuple[tuple[Run, ...], ...]
    date: tuple[Run, ...]
    subject: tuple[Run, ...]
    to: tuple[Run, ...]
    body: tuple[tuple[Run, ...], ...]  # justified paragraphs
    items: tuple[tuple[Run, ...], ...]  # the old usernames and the closing line
    acceptance: tuple[tuple[Run, ...], ...]  # the officer's block: before the space to sign
    officer: tuple[tuple[Run, ...], ...]  # … and after it
    regards: tuple[tuple[Run, ...], ...]  # the signatory's block: before the space to sign
    signatory: tuple[tuple[Run, ...], ...]  # … and after it
    footer: tuple[Run, ...]
    caption: tuple[Run, ...]  # under the QR code: the registration's reference


def content(data: LetterData) -> Content:
    w = wording()
    fill = {
        "school_name": data.school_name,
        "school_code": thai_digits(data.school_code),
        "province": data.province,
        "affiliation": w[f"affiliation_{data.affiliation}"],
        "officer_name": data.officer_name,
        "national_id": _national_id(data.national_id),
        "phone": _phone(data.phone),
        "ref": data.ref,
        "version": thai_digits(str(data.version)),
    }

    def lines(key: str, **extra: str) -> tuple[tuple[Run, ...], ...]:
        return tuple(runs(line, fill | extra) for line in w[key].splitlines())

    def one(key: str, **extra: str) -> tuple[Run, ...]:
        return runs(w[key], fill | extra)

    return Content(
        number=one("number"),
        address=lines("address"),
        date=(Run(thai_date(data.issued_on), keep=True),),
        subject=one("subject"),
        to=one("to"),
        body=(one(f"purpose_{data.affiliation}"), one("appointment"), one("migration")),
        items=(
            one("old_tsl", value=data.old_tsl_username or w["none"]),
            one("old_kiddiary", value=data.old_kiddiary_username or w["none"]),
            one("closing"),
        ),
        acceptance=lines("acceptance"),
        officer=(*lines("officer_signature"), *lines("officer_name_line"), *lines("officer_role")),
        regards=lines("regards"),
        signatory=(*lines("signature"), *lines("signature_name"),
                   (Run(signatory(data.institution, data.school_name), keep=True),)),
        footer=one("footer"),
        caption=(Run(data.ref, keep=True),),
    )


def prepare() -> None:
    """Load the fonts and the word dictionary now (half a second), not in the first officer's turn."""
    register_fonts()
    words("อุ่นเครื่อง")


Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 in points from the page's bottom left


@dataclass(frozen=True)
class LetterLayout:
    """The letter, and where a photo of it is checked: the QR code's corners tell where the page
    is in the photo (handlers/signatures.py), the signature areas where ink must be."""

    pdf: bytes
    page_size: tuple[float, float]  # points
    qr: Rect  # the symbol itself, without its quiet zone: what a reader finds the corners of
    signatures: tuple[Rect, ...]  # the officer's and the signatory's


def render_letter(data: LetterData) -> bytes:
    """The letter as PDF bytes, on one A4 page."""
    return letter_layout(data).pdf


def letter_layout(data: LetterData) -> LetterLayout:
    page = compose(content(data))
    pdf = draw(page, data.seal, wording()["title"], data.school_name, data.ref)
    left, top, side = page.qr
    quiet = side * QUIET_MODULES / (qr_modules(data.seal) + 2 * QUIET_MODULES)
    qr = (left + quiet, PAGE_HEIGHT - top - side + quiet, left + side - quiet, PAGE_HEIGHT - top - quiet)
    signatures = tuple((x0, PAGE_HEIGHT - bottom, x1, PAGE_HEIGHT - y0) for x0, y0, x1, bottom in page.signatures)
    return LetterLayout(pdf, (PAGE_WIDTH, PAGE_HEIGHT), qr, signatures)
