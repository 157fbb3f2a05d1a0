"""Where a conversation can be, and what a step of the registration is made of."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from handlers.messages import Choice
from handlers.turn import Turn
from handlers.validation import Invalid


class State(StrEnum):
    START = "start"  # no registration under way; any message greets and asks for consent
    CONSENT = "consent"
    AFFILIATION = "affiliation"
    SCHOOL_CODE = "school_code"
    SCHOOL_NAME = "school_name"
    PROVINCE = "province"
    INSTITUTION = "institution"  # school or child development centre, when the name does not say
    OLD_TSL = "old_tsl"
    OLD_KIDDIARY = "old_kiddiary"
    OFFICER_NAME = "officer_name"
    NATIONAL_ID = "national_id"
    PHONE = "phone"
    OTP = "otp"
    SUMMARY = "summary"
    LETTER = "letter"  # details confirmed, letter sent: waiting for the signed letter
    SUBMITTED = "submitted"  # signed letter received: waiting for the review


class Handled:
    """An answer function's way of saying: I replied and moved the conversation myself."""


HANDLED = Handled()
Outcome = Invalid | Handled | None  # None: the answer was taken; move forward


@dataclass(frozen=True)
class Step:
    number: int  # shown to the officer as ขั้นที่ n/N
    title: str  # template key
    question: Callable[[Turn], str]
    answer: Callable[[Turn, str, str | None], Awaitable[Outcome]]  # (turn, text, button payload)
    done: Callable[[Turn], bool]
    needed: Callable[[Turn], bool] = lambda turn: True
    choices: Callable[[Turn], list[Choice]] = lambda turn: []
    current: Callable[[Turn], str | None] = lambda turn: None  # the stored answer, shown when re-asked
    free_text: bool = True  # False: only one of `choices` is an answer



# The steps the summary offers to edit, in the order it lists them.
EDITABLE = (
    State.AFFILIATION, State.SCHOOL_CODE, State.SCHOOL_NAME, State.PROVINCE, State.OLD_TSL,
    State.OLD_KIDDIARY, State.OFFICER_NAME, State.NATIONAL_ID, State.PHONE,
)
