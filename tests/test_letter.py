"""The appointment letter: what it says for each affiliation, and that every letter the validators
can produce is one clean page: no ink of one line touching another's, nothing past the margins,
names and codes whole, and text that searches and copies as it was written."""

from __future__ import annotations

import ctypes
import itertools
import shutil
import subprocess
import unicodedata
from collections import Counter
from datetime import date
from functools import cache

import fontpkg_sarabun
import pypdfium2
import pypdfium2.raw as pdfium
import pytest
import uharfbuzz
import zxingcpp
from pythainlp.tokenize import word_tokenize
from reportlab.lib.pagesizes import A4

from handlers.letter_seal import Seal, seal, unseal
from handlers.validation import MAX_NAME_PART, SCHOOL_NAME_LENGTH, officer_name, school_name
from templates import thai_layout
from templates.letter import CENTRE, SCHOOL, LetterData, content, render_letter, thai_date, wording
from templates.letter_page import BOTTOM, LEFT, PAGE_HEIGHT, PAGE_WIDTH, QR_SIZE, RIGHT, TOP, compose
from templates.thai_layout import (
    FONT,
    OVERHANG,
    SPACE_STRETCH,
    WORD_STRETCH,
    Run,
    lay_out,
    register_fonts,
    shape,
    space_width,
)

KEY = b"k" * 32
NEVER_START = set("ะัาำิีึืุู็่้๊๋์ๅๆฯ")
NEVER_END = set("เแโใไ")


def letter(affiliation: str = "obec", **changes: object) -> LetterData:
    data = {
        "ref": "KD-7K3M-9Q2X", "version": 1, "affiliation": affiliation, "school_code": "1054530001",
        "school_name": "โรงเรียนบ้านหนองบัว" if affiliation == "obec" else "ศูนย์พัฒนาเด็กเล็กบ้านดอนมูล",
        "province": "แพร่", "officer_name": "นางสาวสมศรี ใจดี", "national_id": "1234545678781",
        "phone": "+66812345678", "old_tsl_username": "tsl1234", "old_kiddiary_username": "",
        "issued_on": date(2026, 5, 12), "seal": seal(KEY, "KD-7K3M-9Q2X", 1),
        "institution": SCHOOL if affiliation == "obec" else CENTRE,
    }
    data.update(changes)
    return LetterData(**data)  # type: ignore[arg-type]


def accepted_school(name: str) -> str:
    assert school_name(name) == name, name  # what the validator lets through, unchanged
    return name


def accepted_officer(name: str) -> str:
    parsed = officer_name(name)
    assert str(parsed) == name, name
    return name


def longest(words: str, limit: int) -> str:
    """`words` repeated up to `limit` characters, cut at a space."""
    text = (words + " ") * (limit // len(words) + 1)
    return text[:limit].rsplit(" ", 1)[0] if text[limit] != " " else text[:limit]


LONG_SCHOOL = accepted_school(longest(
    "ศูนย์พัฒนาเด็กเล็กองค์การบริหารส่วนตำบลบ้านใหม่สามัคคีธรรมเฉลิมพระเกียรติ ๘๐ พรรษา มหาราชินี", SCHOOL_NAME_LENGTH[1]))
SPACELESS_SCHOOL = accepted_school(("โรงเรียนบ้านหนองบัวประชาสามัคคีวิทยาคม" * 4)[:SCHOOL_NAME_LENGTH[1]])
LONG_OFFICER = accepted_officer(
    "ว่าที่ร้อยตรีหญิง" + ("วิภาวรรณศรีสุขสวัสดิ์" * 3)[:MAX_NAME_PART] + " " + ("เจริญพรประเสริฐฟื้นฟู" * 3)[:MAX_NAME_PART])
RARE_SCHOOL = accepted_school("โรงเรียนบ้านฤๅษีฦๅชาปั๊มน้ำ")
RARE_OFFICER = accepted_officer("นางสาวญูฐุติ๋ม ศักดิ์ฤๅฎูฏุ")

CASES = {
    "obec": letter("obec"),
    "lao centre": letter("lao"),
    "lao school": letter("lao", school_name="โรงเรียนเทศบาล ๑ (วัดหลวง)", institution=SCHOOL),
    "longest names": letter("lao", school_name=LONG_SCHOOL, officer_name=LONG_OFFICER, school_code="123456789012",
                            old_kiddiary_username="k" * 64, old_tsl_username="abcd1234"),
    "longest obec": letter("obec", school_name=SPACELESS_SCHOOL, officer_name=LONG_OFFICER),
    "rare marks": letter("obec", school_name=RARE_SCHOOL, officer_name=RARE_OFFICER, province="ศรีสะเกษ"),
    "latin": letter("obec", school_name=accepted_school("Bangkok Pattana School"),
                    officer_name=accepted_officer("Ms. Jane Smith-Wattanakul")),
}


@cache
def rendered(case: str) -> bytes:
    return render_letter(CASES[case])


# --- reading the PDF back ----------------------------------------------------------------------


def _actual_text(obj) -> str | None:
    for i in range(pdfium.FPDFPageObj_CountMarks(obj.raw)):
        mark = pdfium.FPDFPageObj_GetMark(obj.raw, i)
        length = ctypes.c_ulong()
        if not pdfium.FPDFPageObjMark_GetParamStringValue(mark, b"ActualText", None, 0, ctypes.byref(length)):
            continue
        buffer = ctypes.create_string_buffer(length.value)
        pdfium.FPDFPageObjMark_GetParamStringValue(
            mark, b"ActualText", ctypes.cast(buffer, ctypes.POINTER(ctypes.c_ushort)), length.value,
            ctypes.byref(length))
        units = buffer.raw[: length.value - 2].decode("utf-16-le")  # without the terminating NUL
        # pdfium hands the UTF-16BE string back byte by byte: read for messages, compared as is
        return units.encode("latin-1", "replace").decode("utf-16-be", "replace")
    return None


def drawn(pdf: bytes) -> tuple[list[tuple[str, list[tuple[float, float, float, float]]]], list[tuple]]:
    """The text lines as pdfium sees them: (their /ActualText, the ink boxes of their glyph runs,
    top-down page coordinates), and the boxes of everything else drawn (the QR code)."""
    document = pypdfium2.PdfDocument(pdf)
    lines: list[tuple[str, list]] = []
    others = []
    try:
        for obj in document[0].get_objects():
            left, bottom, right, top = obj.get_bounds()
            box = (left, PAGE_HEIGHT - top, right, PAGE_HEIGHT - bottom)
            if obj.type != pdfium.FPDF_PAGEOBJ_TEXT:
                others.append(box)
                continue
            text = _actual_text(obj)
            assert text is not None, "every text object is inside an /ActualText span"
            if not lines or lines[-1][0] != text:  # a line's glyph runs come one after another
                lines.append((text, []))
            lines[-1][1].append(box)
    finally:
        document.close()
    return lines, others


def pdfium_text(pdf: bytes) -> str:
    document = pypdfium2.PdfDocument(pdf)
    try:
        return document[0].get_textpage().get_text_range()
    finally:
        document.close()


def pdftotext(pdf: bytes) -> str:
    assert shutil.which("pdftotext"), "poppler-utils (pdftotext) is installed by .ci/run"
    return subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()


def overlaps(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@cache
def _hb_font() -> uharfbuzz.Font:
    blob = uharfbuzz.Blob.from_file_path(str(fontpkg_sarabun.ROOT / "files" / "Sarabun-Regular.ttf"))
    return uharfbuzz.Font(uharfbuzz.Face(blob))


def hb_ink(text: str, size: float) -> tuple[float, float, float, float]:
    """The ink of `text` shaped by harfbuzz on its own: left, top, right, bottom, y down from the baseline."""
    font = _hb_font()
    buffer = uharfbuzz.Buffer()
    buffer.add_str(text)
    buffer.guess_segment_properties()
    uharfbuzz.shape(font, buffer, {})
    scale, pen, box = size / font.face.upem, 0, [1e9, 1e9, -1e9, -1e9]
    for info, pos in zip(buffer.glyph_infos, buffer.glyph_positions, strict=True):
        e = font.get_glyph_extents(info.codepoint)
        if e.width and e.height:
            x0 = pen + pos.x_offset + e.x_bearing
            y0 = pos.y_offset + e.y_bearing
            box = [min(box[0], x0 * scale), min(box[1], -y0 * scale),
                   max(box[2], (x0 + e.width) * scale), max(box[3], -(y0 + e.height) * scale)]
        pen += pos.x_advance
    return tuple(box)  # type: ignore[return-value]


# --- every case: one clean page ----------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_no_ink_of_one_line_touches_another_and_nothing_crosses_the_margins(case):
    pdf = rendered(case)
    document = pypdfium2.PdfDocument(pdf)
    assert len(document) == 1 and tuple(round(x) for x in document[0].get_size()) == tuple(round(x) for x in A4)
    document.close()
    lines, others = drawn(pdf)
    assert len(lines) >= 25 and len(others) == 1  # the text, and the QR code
    frame = (LEFT, TOP, PAGE_WIDTH - RIGHT, PAGE_HEIGHT - BOTTOM)
    boxes = [(i, box) for i, (_, line) in enumerate(lines) for box in line] + [(-1, others[0])]
    for i, box in boxes:
        assert frame[0] - 0.5 <= box[0] and box[2] <= frame[2] + 0.5, (case, lines[i][0] if i >= 0 else "QR")
        assert frame[1] - 0.5 <= box[1] and box[3] <= frame[3] + 0.5, (case, lines[i][0] if i >= 0 else "QR")
    collisions = [(lines[i][0], lines[j][0] if j >= 0 else "QR") for (i, a), (j, b) in itertools.combinations(boxes, 2)
                  if i != j and overlaps(a, b)]
    assert collisions == []
    qr = others[0]
    assert QR_SIZE * 0.7 <= qr[2] - qr[0] <= QR_SIZE  # the modules, inside their 4-module quiet zone


@pytest.mark.parametrize("case", list(CASES))
def test_harfbuzz_ink_of_the_placed_lines_never_overlaps(case):
    """The same from the layout: each line's words shaped afresh by harfbuzz, placed where the
    page put them; no two lines' ink boxes meet and a hair of white stays between them."""
    page = compose(content(CASES[case]))
    boxes = []
    for n, placed in enumerate(page.lines):
        for x, unit in zip(placed.line.xs, placed.line.units, strict=True):
            left, top, right, bottom = hb_ink(unit.text, placed.line.size)
            x0 = placed.x + x
            boxes.append((n, (x0 + left, placed.baseline + top, x0 + right, placed.baseline + bottom)))
    assert [(page.lines[i].text, page.lines[j].text) for (i, a), (j, b) in itertools.combinations(boxes, 2)
            if i != j and overlaps(a, b)] == []


@pytest.mark.parametrize("case", list(CASES))
def test_text_extracts_exactly_as_written(case):
    pdf = rendered(case)
    page = compose(content(CASES[case]))
    intended = [p.text for p in page.lines]
    for extracted in (pdfium_text(pdf), pdftotext(pdf)):
        found = extracted.replace("\r\n", "\n")
        missing = [line for line in intended if line not in found]
        assert missing == [], case
        assert not any(0xE000 <= ord(ch) <= 0xF8FF for ch in extracted)  # no private-use glyph codes
        assert "\u0e4d\u0e32" not in extracted  # ำ, not ํ + า
        # Nothing more, nothing less: the same characters, white space aside.
        assert Counter("".join(found.split())) == Counter("".join("".join(intended).split()))


@pytest.mark.parametrize("case", list(CASES))
def test_names_codes_and_dates_are_never_split_nor_spaced(case):
    data = CASES[case]
    page = compose(content(data))
    kept = [data.school_name, data.officer_name, thai_date(data.issued_on), "๑-๒๓๔๕-๔๕๖๗๘-๗๘-๑", "๐๘๑-๒๓๔-๕๖๗๘",
            data.ref, "ผู้มีอำนาจลงนาม", "จังหวัด" + data.province]
    space = space_width(FONT)
    for placed in page.lines:
        line = placed.line
        for i, unit in enumerate(line.units):
            if i and not unit.stretch:  # a piece of a name too long for any line: set at its natural spacing
                before = line.units[i - 1].shaped.advance * line.size
                natural = line.xs[i - 1] + before + space * line.size * unit.spaces
                assert abs(line.xs[i] - natural) < 0.01, (case, unit.text)
    for value in kept:
        holders = [p for p in page.lines if value in p.text]
        if value in (data.school_name, data.officer_name) and not holders:
            # Wider than its column: broken only at its own spaces, else between whole words.
            joined = " ".join(p.text for p in page.lines)
            assert value in joined or value.replace(" ", "") in joined.replace(" ", ""), (case, value)
            continue
        assert holders, (case, value)
        for placed in holders:  # kept as one unit: drawn as one run, nothing widened inside
            assert any(value in u.text for u in placed.line.units) or value in placed.text, (case, value)


def test_a_name_that_fits_its_line_is_never_broken_even_under_the_signature():
    data = letter("lao", school_name="ศูนย์พัฒนาเด็กเล็กบ้านปิ่นปั่นสามัคคี", officer_name="นางสาวปิ่นปั่น ศรีสุขสวัสดิ์")
    page = compose(content(data))
    assert any(p.text == "(นางสาวปิ่นปั่น ศรีสุขสวัสดิ์)" for p in page.lines)
    assert any(p.text == "หัวหน้าศูนย์พัฒนาเด็กเล็กบ้านปิ่นปั่นสามัคคี" for p in page.lines)
    assert sum(data.school_name in p.text for p in page.lines) == 3  # address, body, signatory


def test_every_case_is_one_page_at_a_readable_size():
    sizes = {case: compose(content(data)).size for case, data in CASES.items()}
    assert sizes["obec"] == sizes["lao centre"] == 12.0
    assert min(sizes.values()) >= 10.5, sizes  # TH Sarabun PSK 15.4 pt at worst
    assert all(compose(content(data)).fits for data in CASES.values())


# --- what it says --------------------------------------------------------------------------------


def said(data: LetterData) -> str:
    return " ".join(pdfium_text(render_letter(data)).split())


def test_obec_letter_cites_what_obec_schools_received():
    text = said(letter("obec"))
    assert "อว ๖๐๐๔/ว ๙๙๙" not in text and "มท ๐๘๑๖.๒/ว ๓๔๕๗" not in text
    assert "แนวทางการลงทะเบียนเจ้าหน้าที่รับผิดชอบบัญชีผู้ใช้งานแพลตฟอร์ม KidDiary" in text
    assert "ผู้อำนวยการโรงเรียนบ้านหนองบัว" in text and "สังกัด สพฐ." in text


def test_local_government_letter_cites_the_dla_letter_through_the_province():
    text = said(letter("lao"))
    assert "ตามหนังสือกรมส่งเสริมการปกครองท้องถิ่น (สถ.) ที่ มท ๐๘๑๖.๒/ว ๓๔๕๗ ลงวันที่ ๗ พฤศจิกายน ๒๕๖๕" in text
    assert "จังหวัดแจ้ง" in text and "อว ๖๐๐๔" not in text
    assert "หัวหน้าศูนย์พัฒนาเด็กเล็กบ้านดอนมูล" in text and "/ ผู้มีอำนาจลงนาม" not in text


@pytest.mark.parametrize("affiliation", ["obec", "lao"])
def test_each_agency_is_spelt_out_once_then_abbreviated(affiliation):
    text = "".join(said(letter(affiliation)).split())  # a long name may wrap between its words
    for full, short in (("ศูนย์เทคโนโลยีอิเล็กทรอนิกส์และคอมพิวเตอร์แห่งชาติ", "เนคเทค"),
                        ("สำนักงานคณะกรรมการการศึกษาขั้นพื้นฐาน", "สพฐ."),
                        ("กรมส่งเสริมการปกครองท้องถิ่น", "สถ.")):
        assert text.count(full) == 1, full
        assert f"{full}({short})" in text
        assert text.index(f"{full}({short})") <= text.index(short) - len(full) - 1  # introduced before use


def test_the_footer_says_to_photograph_after_signing_and_the_letter_holds_the_registration():
    data = letter("obec", old_kiddiary_username="nongbua.school")
    text = said(data)
    assert "ลงนามแล้วถ่ายภาพ" in text
    for expected in ("โรงเรียนบ้านหนองบัว", "รหัสสถานศึกษา ๑๐๕๔๕๓๐๐๐๑", "จังหวัดแพร่", "นางสาวสมศรี ใจดี",
                     "๑-๒๓๔๕-๔๕๖๗๘-๗๘-๑", "๐๘๑-๒๓๔-๕๖๗๘", "Thai School Lunch: tsl1234", "KidDiary: nongbua.school",
                     "๑๒ พฤษภาคม ๒๕๖๙", "KD-7K3M-9Q2X", "ฉบับที่ ๑", "ขอแสดงความนับถือ", "(นางสาวสมศรี ใจดี)"):
        assert expected in text, expected


def test_the_font_is_sarabun_embedded_and_subset():
    pdf = rendered("obec")
    assert pdf.count(b"/FontFile2") == 1 and b"/BaseFont /AAAAAA+Sarabun-Regular" in pdf


def test_thai_dates_are_buddhist_era_in_thai_numerals():
    assert thai_date(date(2026, 5, 12)) == "๑๒ พฤษภาคม ๒๕๖๙"
    assert thai_date(date(2022, 11, 3)) == "๓ พฤศจิกายน ๒๕๖๕"


# --- lines: breaks and justification -----------------------------------------------------------


PARAGRAPHS = [
    "ทั้งข้อมูลน้ำหนักส่วนสูงของนักเรียนจากระบบ DMC และ LEC เข้าสู่แพลตฟอร์ม KidDiary ได้ร่วมกันเชื่อมโยงข้อมูล"
    "ด้านโภชนาการของนักเรียนและอาหารกลางวันในโรงเรียน",
    "ผู้ดูแลแพลตฟอร์มจำเป็นต้องปิดระบบเพื่อยืนยันตัวตนผู้มีสิทธิ์เข้าถึงข้อมูลและรองรับการเชื่อมข้อมูลกับระบบอื่นต่อไป"
    "ภายใต้พระราชบัญญัติคุ้มครองข้อมูลส่วนบุคคล",
]


def bad_breaks(lines: list[str], source: str) -> list[str]:
    """Line ends that are not word boundaries of `source`: a syllable cut in two, or a break
    that is not at a space or between two of pythainlp's words."""
    boundaries, at = set(), 0
    for word in word_tokenize(source, engine="newmm", keep_whitespace=True):
        at += len(word.replace(" ", ""))
        boundaries.add(at)
    problems, at = [], 0
    for before, after in itertools.pairwise(line.strip() for line in lines):
        at += len(before.replace(" ", ""))
        if before[-1] in NEVER_END or after[0] in NEVER_START or at not in boundaries:
            problems.append(f"{before[-6:]}|{after[:6]}")
    return problems


@pytest.mark.parametrize("width", [180, 260, 330, 453])
@pytest.mark.parametrize("paragraph", PARAGRAPHS)
def test_lines_end_only_at_word_boundaries_and_justify_within_the_caps(paragraph, width):
    register_fonts()
    size = 12
    lines = lay_out((Run(paragraph),), FONT, size, width, align="justify")
    assert len(lines) > 1
    assert bad_breaks([line.text for line in lines], paragraph) == []
    assert "".join(line.text.replace(" ", "") for line in lines) == paragraph.replace(" ", "")
    space = space_width(FONT) * size
    for line in lines[:-1]:
        end = line.xs[-1] + line.units[-1].shaped.advance * size
        gaps = [line.xs[i] - line.xs[i - 1] - line.units[i - 1].shaped.advance * size - space * u.spaces
                for i, u in enumerate(line.units) if i]
        assert all(g >= -0.01 for g in gaps)
        assert all(g <= (SPACE_STRETCH if u.spaces else WORD_STRETCH) * size + 0.01
                   for g, u in zip(gaps, line.units[1:], strict=True))
        # Justified (short of the edge only by ink that stands out of its glyph), or ragged and unstretched.
        assert abs(end - width) <= OVERHANG * size or not any(g > 0.01 for g in gaps)
    assert all(line.xs[-1] + line.units[-1].shaped.advance * size <= width + 0.01 for line in lines)


def test_the_boundary_check_catches_reportlabs_own_breaking():
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Paragraph

    register_fonts()
    naive = Paragraph(PARAGRAPHS[1], ParagraphStyle("naive", fontName=FONT, fontSize=16, leading=20))
    naive.wrap(200, 1000)
    lines = ["".join(str(w) for w in line[1]) for line in naive.blPara.lines]
    assert bad_breaks(lines, PARAGRAPHS[1]) != []


def test_a_kept_run_is_one_unit_and_only_a_run_wider_than_the_line_is_broken():
    register_fonts()
    name = "นางสาวสมศรี ใจดีมีสุข"
    runs = (Run("ขอแต่งตั้ง "), Run(name, keep=True), Run(" เป็นเจ้าหน้าที่รับผิดชอบ"))
    for width in (120, 200, 400):
        lines = lay_out(runs, FONT, 12, width, align="justify")
        assert sum(name in line.text for line in lines) == 1, width
    widest_part = max(shape(part, FONT).advance * 12 for part in name.split())
    narrow = lay_out(runs, FONT, 12, widest_part + 2, align="justify")  # narrower than the name: at its space only
    assert "นางสาวสมศรี" in [line.text for line in narrow]
    assert any(line.text.startswith("ใจดีมีสุข") for line in narrow)


def test_fonts_and_dictionary_load_once_per_process():
    render_letter(letter())
    before = (thai_layout.register_fonts.cache_info().misses, thai_layout._tokenizer.cache_info().misses)
    render_letter(letter("lao"))
    after = (thai_layout.register_fonts.cache_info().misses, thai_layout._tokenizer.cache_info().misses)
    assert before == after == (1, 1)


def test_the_wording_has_no_unclosed_markup():
    for key, value in wording().items():
        assert value.count("⟦") == value.count("⟧"), key


def test_normalised_text_is_what_the_registration_holds():
    # Thai text is compared as typed: the letter draws NFC text and gives back NFC text.
    data = CASES["rare marks"]
    assert unicodedata.normalize("NFC", data.officer_name) in said(data)


# --- the QR seal ------------------------------------------------------------------------------


def test_the_qr_code_on_the_letter_carries_the_sealed_reference():
    pdf = render_letter(letter(version=3, seal=seal(KEY, "KD-7K3M-9Q2X", 3)))
    document = pypdfium2.PdfDocument(pdf)
    image = document[0].render(scale=2).to_pil()
    document.close()
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert [unseal(KEY, r.text) for r in found] == [Seal("KD-7K3M-9Q2X", 3)]


def test_a_forged_seal_is_detected():
    good = seal(KEY, "KD-7K3M-9Q2X", 1)
    assert unseal(b"another key" * 3, good).reason == "letter_tampered"
    assert unseal(KEY, good.replace("KD-7K3M", "KD-7K3N")).reason == "letter_tampered"
    assert unseal(KEY, good[:-1] + ("A" if good[-1] != "A" else "B")).reason == "letter_tampered"
    assert unseal(KEY, "KDL1.garbage").reason == "letter_tampered"
    assert unseal(KEY, "https://line.me/R/ti/p/@school") is None  # someone else's QR code
