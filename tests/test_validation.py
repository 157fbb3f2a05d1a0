"""Every validation failure: the reason, the sentence the officer reads, and that nothing changed."""

from __future__ import annotations

import pytest

from handlers import validation as v
from handlers.validation import Invalid
from tests.helpers import Officer

# --- the validators on their own ----------------------------------------------------------


@pytest.mark.parametrize("typed", [
    "1234545678781", "1-2345-45678-78-1", "1 2345 45678 78 1", "๑๒๓๔๕๔๕๖๗๘๗๘๑", "１２３４５４５６７８７８１",
])
def test_national_id_accepted_forms(typed):
    assert v.national_id(typed) == "1234545678781"


@pytest.mark.parametrize("typed, reason", [
    ("1234545678789", "nid_checksum"),
    ("0234545678781", "nid_first_digit"),
    ("9234545678781", "nid_first_digit"),
    ("12345", "nid_length"),
    ("12345456787811", "nid_length"),
    ("12345456787a1", "nid_format"),
])
def test_national_id_refused(typed, reason):
    assert v.national_id(typed).reason == reason


def test_national_id_masked():
    assert v.mask_national_id("1234545678781") == "1-2345-xxxxx-xx-1"


@pytest.mark.parametrize("typed", [
    "0812345678", "081-234-5678", "081 234 5678", "+66812345678", "+66 81 234 5678", "66812345678",
    "๐๘๑๒๓๔๕๖๗๘", "０８１２３４５６７８", "(081) 234-5678",
])
def test_thai_mobile_accepted_forms(typed):
    assert v.thai_mobile(typed) == "+66812345678"


@pytest.mark.parametrize("typed", ["0912345678", "0612345678", "0661234567", "0671234567"])
def test_thai_mobile_ranges(typed):
    assert isinstance(v.thai_mobile(typed), str)


@pytest.mark.parametrize("typed, reason", [
    ("021234567", "phone_not_mobile"),  # Bangkok landline
    ("053123456", "phone_not_mobile"),  # Chiang Mai landline
    ("0670234567", "phone_format"),  # 067 outside its mobile blocks
    ("+14155552671", "phone_not_thai"),
    ("081234567", "phone_format"),  # one digit short
    ("08123456789", "phone_format"),
    ("โทร 081", "phone_format"),
    ("", "phone_format"),
])
def test_thai_mobile_refused(typed, reason):
    assert v.thai_mobile(typed).reason == reason


@pytest.mark.parametrize("typed, title, first, last", [
    ("นางสาวสมศรี ใจดี", "นางสาว", "สมศรี", "ใจดี"),
    ("นาง สมศรี ใจดี", "นาง", "สมศรี", "ใจดี"),
    ("ว่าที่ร้อยตรีสมชาย ใจกล้า", "ว่าที่ร้อยตรี", "สมชาย", "ใจกล้า"),
    ("ดร.วิภา ศรีสุข", "ดร.", "วิภา", "ศรีสุข"),
    ("Mr. John Smith", "Mr.", "John", "Smith"),
    ("Ms Mary-Ann O'Neil", "Ms", "Mary-Ann", "O'Neil"),
    # นางสาว would leave "ิตรี", a vowel with no consonant: Mrs Sawitri, not Miss "ิตรี"
    ("นางสาวิตรี ใจดี", "นาง", "สาวิตรี", "ใจดี"),
    ("นายเอก ใจดี", "นาย", "เอก", "ใจดี"),
])
def test_officer_name_accepted(typed, title, first, last):
    assert v.officer_name(typed) == v.OfficerName(title, first, last)


@pytest.mark.parametrize("typed, reason", [
    ("สมศรี ใจดี", "name_no_title"),
    ("Mrsmith Jones", "name_no_title"),
    ("นางสาวสมศรี", "name_missing_last"),
    ("นายสมชาย ใจดี2", "name_chars"),
    ("นายสมชาย 😀", "name_chars"),
    ("นาย" + "ก" * 51 + " ใจดี", "name_length"),
    ("นายิก ใจดี", "name_chars"),  # a name cannot start with a vowel mark
    ("นาย่สมชาย ใจดี", "name_chars"),  # nor with a tone mark (one after a space is dropped in cleaning)
])
def test_officer_name_refused(typed, reason):
    assert v.officer_name(typed).reason == reason


@pytest.mark.parametrize("typed, expected", [
    ("tsl1234", "tsl1234"), ("ABCDEFGH", "ABCDEFGH"),
    ("tsl 123", Invalid("tsl_chars")), ("สพฐ123", Invalid("tsl_chars")), ("tsl_12", Invalid("tsl_chars")),
    ("abcdefghi", Invalid("tsl_length", {"max": 8, "count": 9})),
])
def test_tsl_username(typed, expected):
    assert v.tsl_username(typed) == expected


@pytest.mark.parametrize("typed, expected", [
    ("nongbua.school", "nongbua.school"), ("โรงเรียน1", "โรงเรียน1"),
    ("ab", Invalid("kd_length", {"min": 3, "max": 64, "count": 2})),
    ("a" * 65, Invalid("kd_length", {"min": 3, "max": 64, "count": 65})),
    ("nong bua", Invalid("kd_spaces")), ("school😀", Invalid("kd_chars")),
])
def test_kiddiary_username(typed, expected):
    assert v.kiddiary_username(typed) == expected


def test_a_mark_kept_from_its_letter_by_an_invisible_character_is_joined_to_it():
    # Copy-paste leaves a zero-width space between "e" and its accent: stored as "é", one code
    # point, the same as typing it again gives (and as the same name typed on another phone).
    assert v.kiddiary_username("cafe\u200b\u0301.school") == "caf\u00e9.school"


@pytest.mark.parametrize("word", ["ไม่มี", "none", "None", "-", "ไม่เคยมี"])
def test_none_words(word):
    assert v.is_none_answer(word)


@pytest.mark.parametrize("typed, affiliation, expected", [
    ("1054530001", "obec", "1054530001"), ("10545300", "obec", "10545300"), ("๑๐๕๔๕๓๐๐๐๑", "obec", "1054530001"),
    ("10-5453-0001", "obec", "1054530001"), ("12345", "lao", "12345"), ("123456789012", "lao", "123456789012"),
    ("105453000", "obec", Invalid("code_length_obec", {"count": 9})),
    ("1234", "lao", Invalid("code_length_lao", {"count": 4})),
    ("10545A0001", "obec", Invalid("code_digits")),
])
def test_school_code(typed, affiliation, expected):
    assert v.school_code(typed, affiliation) == expected


@pytest.mark.parametrize("typed, expected", [
    ("โรงเรียนบ้านหนองบัว (ประชาสามัคคี)", "โรงเรียนบ้านหนองบัว (ประชาสามัคคี)"),
    ("ab", Invalid("school_name_length", {"min": 3, "max": 150})),
    ("12345", Invalid("school_name_chars")),
    ("โรงเรียน 🏫", Invalid("school_name_chars")),
    ("x'); DROP TABLE schools; --", Invalid("school_name_chars")),
])
def test_school_name(typed, expected):
    assert v.school_name(typed) == expected


@pytest.mark.parametrize("typed", ["แพร่", "จ.แพร่", "จังหวัดแพร่", "Phrae", "phrae", "พร"])
def test_province_spellings(typed):
    assert v.province(typed) == "แพร่"


def test_province_bangkok_short_forms():
    assert {v.province(x) for x in ("กทม.", "กทม", "กรุงเทพ", "Bangkok")} == {"กรุงเทพมหานคร"}


def test_province_suggestion():
    assert v.province("เชียงใหมม") == Invalid("province_unknown", {"suggestion": "เชียงใหม่"})
    assert v.province("Atlantis") == Invalid("province_unknown", {"suggestion": ""})


# --- through the conversation: what the officer is told, and nothing stored changes -------

BAD_ANSWERS = [
    ("school_code", "105453000", "err_code_length_obec", {"count": 9}),
    ("school_code", "หนึ่งสองสาม", "err_code_digits", {}),
    ("school_name", "ab", "err_school_name_length", {"min": 3, "max": 150}),
    ("school_name", "🏫🏫🏫", "err_school_name_chars", {}),
    ("province", "เชียงใหมม", "err_province_suggest", {"suggestion": "เชียงใหม่"}),
    ("province", "Atlantis", "err_province_unknown", {}),
    ("old_tsl", "my school", "err_tsl_chars", {}),
    ("old_tsl", "abcdefghi", "err_tsl_length", {"max": 8, "count": 9}),
    ("old_kiddiary", "ab", "err_kd_length", {"min": 3, "max": 64, "count": 2}),
    ("old_kiddiary", "nong bua", "err_kd_spaces", {}),
    ("old_kiddiary", "school😀", "err_kd_chars", {}),
    ("officer_name", "สมศรี ใจดี", "err_name_no_title", {}),
    ("officer_name", "นางสาวสมศรี", "err_name_missing_last", {}),
    ("officer_name", "นางสาวสมศรี ใจดี99", "err_name_chars", {}),
    ("officer_name", "นาย" + "ก" * 51 + " ใจดี", "err_name_length", {"max": 50}),
    ("national_id", "1234545678789", "err_nid_checksum", {}),
    ("national_id", "0234545678781", "err_nid_first_digit", {}),
    ("national_id", "123", "err_nid_length", {"count": 3}),
    ("national_id", "12345456787a1", "err_nid_format", {}),
    ("phone", "02-123-4567", "err_phone_not_mobile", {}),
    ("phone", "+1 415 555 2671", "err_phone_not_thai", {}),
    ("phone", "0812", "err_phone_format", {}),
    ("otp", "12ab", "err_otp_format", {}),
]


async def snapshot(officer: Officer):
    repo = officer.dispatcher.repo
    async with repo.transaction():
        conv = await repo.get_conversation(officer.channel, officer.user_id)
        reg = await repo.get_registration(conv.registration_id)
    return conv, reg


@pytest.mark.parametrize("step, answer, key, params", BAD_ANSWERS, ids=[f"{s}-{k}" for s, _, k, _ in BAD_ANSWERS])
async def test_bad_answer_is_explained_and_changes_nothing(officer: Officer, step, answer, key, params):
    await officer.up_to(step)
    before = await snapshot(officer)
    await officer.say(answer)
    assert officer.said(key, **params)
    assert officer.payloads[-1] == "cmd:back"  # the step's buttons come with the explanation
    assert await snapshot(officer) == before


async def test_bad_answer_in_english(officer: Officer):
    await officer.up_to("phone")
    await officer.say("/lang en")
    await officer.say("02-123-4567")
    assert officer.said("err_phone_not_mobile", "en")
