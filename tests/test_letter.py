"""The appointment letter: its content for both affiliations, Thai rendering, the QR seal."""

from __future__ import annotations

import ctypes
import io
import itertools
import unicodedata
from datetime import date

import pypdfium2
import pytest
import zxingcpp
from PIL import Image
from pythainlp.tokenize import word_tokenize
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas as pdf_canvas

from handlers.letter_seal import Seal, seal, unseal
from templates import thai_layout
from templates.letter import LetterData, render_letter, thai_date, wording
from templates.thai_layout import FONT, Style, ThaiParagraph, lay_out, register_fonts

KEY = b"k" * 32
TONE_MARKS = "\u0e48\u0e49\u0e4a\u0e4b"
UPPER_VOWELS = "\u0e31\u0e34\u0e35\u0e36\u0e37\u0e47"
# Characters that belong to the letter before them, and letters that belong to the one after.
NEVER_START = set("ะัาำิีึืุู็่้๊๋์ๅๆฯ")
NEVER_END = set("เแโใไ")


def letter(affiliation: str = "obec", **changes: object) -> LetterData:
    data = {
        "ref": "KD-7K3M-9Q2X", "version": 1, "affiliation": affiliation, "school_code": "1054530001",
        "school_name": "โรงเรียนบ้านหนองบัว" if affiliation == "obec" else "ศูนย์พัฒนาเด็กเล็กบ้านดอนมูล",
        "province": "แพร่", "officer_name": "นางสาวสมศรี ใจดี", "national_id": "1234545678781",
        "phone": "+66812345678", "old_tsl_username": "tsl1234", "old_kiddiary_username": "",
        "issued_on": date(2026, 5, 12), "seal": seal(KEY, "KD-7K3M-9Q2X", 1),
    }
    data.update(changes)
    return LetterData(**data)  # type: ignore[arg-type]


def text_of(pdf: bytes) -> str:
    document = pypdfium2.PdfDocument(pdf)
    try:
        return "\n".join(page.get_textpage().get_text_range() for page in document)
    finally:
        document.close()


def normal(text: str) -> str:
    """As extracted text compares: NFKC (ำ is drawn as ํ + า), no white space (justified lines
    are placed word by word, so extraction guesses spaces from gaps)."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def png(pdf: bytes, scale: float = 2.0) -> Image.Image:
    document = pypdfium2.PdfDocument(pdf)
    try:
        return document[0].render(scale=scale).to_pil()
    finally:
        document.close()


@pytest.mark.parametrize("affiliation, signatory", [
    ("obec", "ผู้อำนวยการโรงเรียนบ้านหนองบัว"),
    ("lao", "หัวหน้าศูนย์พัฒนาเด็กเล็ก / ผู้มีอำนาจลงนาม"),
])
def test_the_letter_says_what_the_registration_holds(affiliation, signatory, tmp_path):
    pdf = render_letter(letter(affiliation))
    document = pypdfium2.PdfDocument(pdf)
    assert len(document) == 1 and tuple(round(x) for x in document[0].get_size()) == tuple(round(x) for x in A4)
    document.close()
    text = normal(text_of(pdf))
    affiliation_name = {"obec": "สังกัดสำนักงานคณะกรรมการการศึกษาขั้นพื้นฐาน", "lao": "สังกัดองค์กรปกครองส่วนท้องถิ่น"}
    for expected in (
        "หนังสือแต่งตั้งเจ้าหน้าที่รับผิดชอบ", letter(affiliation).school_name, "รหัสสถานศึกษา ๑๐๕๔๕๓๐๐๐๑",
        "จังหวัดแพร่", affiliation_name[affiliation], "นางสาวสมศรี ใจดี", "๑-๒๓๔๕-๔๕๖๗๘-๗๘-๑", "๐๘๑-๒๓๔-๕๖๗๘",
        "Thai School Lunch: tsl1234", "KidDiary: ไม่มี", "๑๒ พฤษภาคม ๒๕๖๙", "KD-7K3M-9Q2X", signatory,
        "DMC", "LEC", "ขอแสดงความนับถือ",
    ):
        assert normal(expected) in text, expected
    image = png(pdf)
    image.save(tmp_path / f"{affiliation}.png")  # what the officer prints
    assert image.size == (round(A4[0] * 2), round(A4[1] * 2))
    assert image.convert("L").getextrema()[0] < 50  # there is ink


def test_the_font_is_sarabun_embedded_and_subset():
    pdf = render_letter(letter())
    assert pdf.count(b"/FontFile2") == 2  # both weights embedded…
    assert b"/BaseFont /AAAAAA+Sarabun-Regular" in pdf and b"/BaseFont /AAAAAA+Sarabun-Bold" in pdf  # …as subsets
    document = pypdfium2.PdfDocument(pdf)
    page = document[0].get_textpage()
    buffer = ctypes.create_string_buffer(100)
    fonts = set()
    for i in range(page.count_chars()):  # every character is drawn in Sarabun, none in a fallback font
        ctypes.memset(buffer, 0, 100)
        pypdfium2.raw.FPDFText_GetFontInfo(page.raw, i, buffer, 100, None)
        fonts.add(buffer.value.decode())
    document.close()
    assert fonts - {""} == {"Sarabun-Regular", "Sarabun-Bold"}  # "": spaces and line ends pdfium infers


def test_a_very_long_school_and_officer_name_still_fit_on_one_page():
    pdf = render_letter(letter(
        "lao",
        school_name="ศูนย์พัฒนาเด็กเล็กองค์การบริหารส่วนตำบลบ้านใหม่สามัคคีธรรมเฉลิมพระเกียรติ ๘๐ พรรษา มหาราชินี",
        officer_name="ว่าที่ร้อยตรีหญิงวิภาวรรณ ศรีสุขสวัสดิ์เจริญพรประเสริฐ",
    ))
    document = pypdfium2.PdfDocument(pdf)
    assert len(document) == 1
    document.close()


def test_thai_dates_are_buddhist_era_in_thai_numerals():
    assert thai_date(date(2026, 5, 12)) == "๑๒ พฤษภาคม ๒๕๖๙"
    assert thai_date(date(2022, 11, 3)) == "๓ พฤศจิกายน ๒๕๖๕"


# --- Thai rendering: tone marks -------------------------------------------------------------


def stacking_problems(pdf: bytes) -> list[str]:
    """Tone marks that do not sit above the upper vowel they follow (they collide with it)."""
    document = pypdfium2.PdfDocument(pdf)
    problems = []
    try:
        page = document[0].get_textpage()
        chars = [page.get_text_range(i, 1) for i in range(page.count_chars())]
        for i in range(1, len(chars)):
            if chars[i] in TONE_MARKS and chars[i - 1] in UPPER_VOWELS:
                _, vowel_bottom, _, vowel_top = page.get_charbox(i - 1)
                _, mark_bottom, _, _ = page.get_charbox(i)
                if mark_bottom < vowel_top - 0.05 * (vowel_top - vowel_bottom):
                    problems.append("".join(chars[max(0, i - 3): i + 2]))
    finally:
        document.close()
    return problems


def test_tone_marks_stack_above_upper_vowels_in_the_letter():
    pdf = render_letter(letter())
    text = text_of(pdf)
    assert sum(text.count(v + m) for v in UPPER_VOWELS for m in TONE_MARKS) >= 10  # ที่, ชื่อ, ตั้ง…
    assert stacking_problems(pdf) == []


def unshaped(text: str) -> bytes:
    """The same words drawn the naive way, without harfbuzz: the collision the letter must avoid."""
    register_fonts()
    buffer = io.BytesIO()
    canvas = pdf_canvas.Canvas(buffer, pagesize=A4)
    canvas.setFont(FONT, 16)
    canvas.drawString(72, 700, text)
    canvas.save()
    return buffer.getvalue()


def shaped(text: str) -> bytes:
    register_fonts()
    buffer = io.BytesIO()
    canvas = pdf_canvas.Canvas(buffer, pagesize=A4)
    paragraph = ThaiParagraph(text, Style(size=16, leading=20, align="left"))
    paragraph.wrapOn(canvas, 400, 100)
    paragraph.drawOn(canvas, 72, 690)
    canvas.save()
    return buffer.getvalue()


def test_the_stacking_check_sees_a_collision_when_text_is_not_shaped():
    assert stacking_problems(unshaped("ที่ ปี่ ชื่อ ตั้ง")) != []
    assert stacking_problems(shaped("ที่ ปี่ ชื่อ ตั้ง")) == []


def top_ink_row(pdf: bytes) -> int:
    """The first pixel row from the top that has any ink, rendered at 600 dpi."""
    image = png(pdf, scale=600 / 72).convert("L")
    rows = [y for y in range(image.height) if image.crop((0, y, image.width, y + 1)).getextrema()[0] < 128]
    return rows[0]


def test_the_tone_mark_of_thi_is_drawn_above_its_vowel():
    # ที่ has ink higher up than ที: the mark sits on top of the vowel. Unshaped, it sinks into
    # the vowel and the top of the ink is where ที's is.
    assert top_ink_row(shaped("ที่")) < top_ink_row(shaped("ที")) - 10
    assert abs(top_ink_row(unshaped("ที่")) - top_ink_row(unshaped("ที"))) < 10


# --- Thai rendering: line breaks only between words -------------------------------------------


PARAGRAPHS = [
    letter().school_name + "ได้ร่วมกันเชื่อมโยงข้อมูลด้านโภชนาการของนักเรียนและอาหารกลางวันในโรงเรียน"
    "ทั้งข้อมูลน้ำหนักส่วนสูงของนักเรียนจากระบบ DMC และ LEC เข้าสู่แพลตฟอร์ม KidDiary",
    "ผู้ดูแลแพลตฟอร์มจำเป็นต้องปิดระบบเพื่อยืนยันตัวตนผู้มีสิทธิ์เข้าถึงข้อมูลและรองรับการเชื่อมข้อมูลกับระบบอื่นต่อไป"
    "ภายใต้พระราชบัญญัติคุ้มครองข้อมูลส่วนบุคคล",
]


def bad_breaks(lines: list[str], source: str) -> list[str]:
    """Line ends that are not word boundaries of `source`, judged two ways: no syllable cut in
    two, and the break falls at a space or between words of pythainlp's segmentation."""
    source = unicodedata.normalize("NFKC", source)
    boundaries, at = set(), 0
    for word in word_tokenize(source, engine="newmm", keep_whitespace=True):
        at += len(word.replace(" ", ""))
        boundaries.add(at)
    problems, at = [], 0
    lines = [unicodedata.normalize("NFKC", line).strip() for line in lines]
    for before, after in itertools.pairwise(lines):
        at += len(before.replace(" ", ""))
        if before[-1] in NEVER_END or after[0] in NEVER_START or at not in boundaries:
            problems.append(f"{before[-6:]}|{after[:6]}")
    return problems


@pytest.mark.parametrize("width", [180, 260, 330, 453])
@pytest.mark.parametrize("paragraph", PARAGRAPHS)
def test_lines_end_only_at_word_boundaries(paragraph, width):
    register_fonts()
    lines = lay_out(paragraph, Style(size=16, leading=20), width)
    assert len(lines) > 1
    assert bad_breaks([line.text for line in lines], paragraph) == []
    assert all(line.width <= width + 0.01 for line in lines)


def test_the_boundary_check_catches_reportlabs_own_breaking():
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Paragraph

    register_fonts()
    naive = Paragraph(PARAGRAPHS[1], ParagraphStyle("naive", fontName=FONT, fontSize=16, leading=20))
    naive.wrap(200, 1000)
    lines = ["".join(str(w) for w in line[1]) for line in naive.blPara.lines]
    assert bad_breaks(lines, PARAGRAPHS[1]) != []


def test_every_line_of_the_letter_body_ends_at_a_word_boundary():
    data = letter()
    text = text_of(render_letter(data))
    lines = text.split("\r\n")
    start = next(i for i, line in enumerate(lines) if normal(line).startswith("ตามหนังสือ"))
    end = next(i for i, line in enumerate(lines) if "พ.ศ. ๒๕๖๒" in line)
    body = [unicodedata.normalize("NFKC", line) for line in lines[start: end + 1]]
    assert len(body) >= 8
    # The two paragraphs as written, with the registration's values filled in.
    source = wording()["purpose"] + " " + wording()["appointment"].format(
        school_name=data.school_name, school_code="๑๐๕๔๕๓๐๐๐๑", province=data.province,
        affiliation=wording()["affiliation_obec"], officer_name=data.officer_name,
        national_id="๑-๒๓๔๕-๔๕๖๗๘-๗๘-๑", phone="๐๘๑-๒๓๔-๕๖๗๘",
    )
    assert "".join(normal(line) for line in body) == normal(source)
    assert bad_breaks(body, source) == []


def test_justified_lines_fill_the_width_and_never_add_characters():
    register_fonts()
    style = Style(size=16, leading=20, align="justify")
    lines = lay_out(PARAGRAPHS[0], style, 330)
    assert "".join(line.text.replace(" ", "") for line in lines) == PARAGRAPHS[0].replace(" ", "")
    assert "\u200b" not in "".join(line.text for line in lines)


def test_fonts_and_dictionary_load_once_per_process():
    render_letter(letter())
    before = (thai_layout.register_fonts.cache_info().misses, thai_layout._tokenizer.cache_info().misses)
    render_letter(letter("lao"))
    after = (thai_layout.register_fonts.cache_info().misses, thai_layout._tokenizer.cache_info().misses)
    assert before == after == (1, 1)


# --- the QR seal ------------------------------------------------------------------------------


def test_the_qr_code_on_the_letter_carries_the_sealed_reference():
    image = png(render_letter(letter(version=3, seal=seal(KEY, "KD-7K3M-9Q2X", 3))))
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert [unseal(KEY, r.text) for r in found] == [Seal("KD-7K3M-9Q2X", 3)]


def test_a_forged_seal_is_detected():
    good = seal(KEY, "KD-7K3M-9Q2X", 1)
    assert unseal(b"another key" * 3, good).reason == "letter_tampered"
    assert unseal(KEY, good.replace("KD-7K3M", "KD-7K3N")).reason == "letter_tampered"
    assert unseal(KEY, good[:-1] + ("A" if good[-1] != "A" else "B")).reason == "letter_tampered"
    assert unseal(KEY, "KDL1.garbage").reason == "letter_tampered"
    assert unseal(KEY, "https://line.me/R/ti/p/@school") is None  # someone else's QR code
