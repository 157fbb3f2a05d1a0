"""Text as phones type it: Thai marks out of order and invisible bidi controls are fixed on input."""

from __future__ import annotations

import pytest

from handlers import validation as v
from handlers.normalize import clean_text
from tests.helpers import Officer

BIDI = ["\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]


@pytest.mark.parametrize("typed, meant", [
    ("นำ้", "น้ำ"),  # sara am typed before the tone mark
    ("นํ้า", "น้ำ"),  # nikhahit + sara aa for sara am
    ("โรงเรียนบ้านนำ้ใส", "โรงเรียนบ้านน้ำใส"),
    ("กิ่่ง", "กิ่ง"),  # a doubled tone mark
    ("เเสง", "แสง"),  # two sara e for sara ae
])
def test_thai_marks_are_put_in_printing_order(typed, meant):
    assert clean_text(typed) == meant


@pytest.mark.parametrize("control", BIDI)
def test_bidi_controls_are_removed_not_made_spaces(control):
    assert clean_text(f"สม{control}ศรี") == "สมศรี"
    assert v.thai_mobile(f"081{control}2345678") == "+66812345678"
    assert v.tsl_username(f"tsl{control}1234") == "tsl1234"


@pytest.mark.parametrize("text", ["ศักดิ์", "ปั๊ม ติ๋ม", "ฤๅษี", "ญูฐุ", "Mr. John Smith", "โรงเรียน (บ้าน) 1/2 & co."])
def test_correct_text_is_left_alone(text):
    assert clean_text(text) == text


async def test_a_name_typed_with_marks_out_of_order_is_stored_and_shown_right(officer: Officer, repo):
    await officer.up_to("school_name")
    await officer.say("\u202bโรงเรียนบ้านนำ้ใส\u202c")
    await officer.say("แพร่")
    await officer.say("ไม่มี")
    await officer.say("ไม่มี")
    await officer.say("นางสาวนำ้\u200eฝน ใจดี")
    async with repo.transaction():
        [reg] = await repo.registrations_of(officer.channel, officer.user_id)
    assert (reg.school_name, reg.officer_first_name, reg.officer_last_name) == ("โรงเรียนบ้านน้ำใส", "น้ำฝน", "ใจดี")
    assert "นำ้" not in officer.text
