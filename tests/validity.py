"""What "a registration is valid" means, checked after hostile inputs and random sequences
(tests/test_hostile.py, tests/test_properties.py): its conversation is in a known state, every
stored field passes its own validator, and each step's invariants hold. Also: whether an
answer is one a user can act on (no internal key or unfilled placeholder leaking)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from handlers import validation as v
from handlers.states import State
from handlers.validation import Invalid
from storage import Conversation, Registration
from storage.models import CANCELLED, DRAFT, STATUSES
from templates import LANGUAGES, catalogue, text

# States in which the conversation holds a registration being filled in or waiting.
HOLDS_REGISTRATION = frozenset(State) - {State.START, State.CONSENT}
AFTER_AFFILIATION = frozenset(State) - {State.START, State.CONSENT, State.AFFILIATION}

_LEAK = re.compile(r"\{[A-Za-z_0-9.!:]*\}|\b(?:err|btn|ask|title|kind|help|status|review)_[a-z_0-9]+\b")


def revalidates(validate: Callable[[str], object], value: str) -> bool:
    """Whether `value`, typed again, validates to itself."""
    again = validate(value)
    return not isinstance(again, Invalid) and again == value


def field_problems(reg: Registration) -> list[str]:
    """The stored fields of `reg` that would not pass their own validators, named."""
    problems = []
    if reg.status not in STATUSES:
        problems.append(f"status {reg.status!r}")
    if reg.affiliation not in (None, "obec", "lao"):
        problems.append(f"affiliation {reg.affiliation!r}")
    if reg.school_code is not None and not revalidates(lambda s: v.school_code(s, reg.affiliation or "obec"),
                                                       reg.school_code):
        problems.append(f"school_code {reg.school_code!r}")
    if reg.school_name is not None and not reg.school_from_directory and not revalidates(v.school_name,
                                                                                         reg.school_name):
        problems.append(f"school_name {reg.school_name!r}")
    if reg.province is not None and not reg.school_from_directory and not revalidates(v.province, reg.province):
        problems.append(f"province {reg.province!r}")
    if reg.old_tsl_username and not revalidates(v.tsl_username, reg.old_tsl_username):
        problems.append(f"old_tsl_username {reg.old_tsl_username!r}")
    if reg.old_kiddiary_username and not revalidates(v.kiddiary_username, reg.old_kiddiary_username):
        problems.append(f"old_kiddiary_username {reg.old_kiddiary_username!r}")
    names = (reg.officer_title, reg.officer_first_name, reg.officer_last_name)
    if any(names) and not all(names):
        problems.append(f"officer name half stored {names!r}")
    elif all(names):
        typed = f"{reg.officer_title} {reg.officer_first_name} {reg.officer_last_name}"
        name = v.officer_name(typed)
        if isinstance(name, Invalid) or (name.title, name.first_name, name.last_name) != names:
            problems.append(f"officer name {names!r}")
    if reg.national_id is not None and not revalidates(v.national_id, reg.national_id):
        problems.append(f"national_id {reg.national_id!r}")
    if reg.phone is not None and not revalidates(v.thai_mobile, reg.phone):
        problems.append(f"phone {reg.phone!r}")
    if (reg.phone is None) != (reg.phone_verified_at is None):
        problems.append("phone and its verification disagree")
    if reg.status == CANCELLED and any((reg.officer_first_name, reg.national_id, reg.phone)):
        problems.append("cancelled but personal data kept")
    return problems


def state_problems(conv: Conversation, reg: Registration | None) -> list[str]:
    """Where the conversation is, against what it holds."""
    if conv.state not in {s.value for s in State}:
        return [f"unknown state {conv.state!r}"]
    state = State(conv.state)
    problems = []
    if conv.lang not in LANGUAGES:
        problems.append(f"language {conv.lang!r}")
    if state in HOLDS_REGISTRATION and reg is None:
        problems.append(f"{state} without a registration")
    if reg is not None and reg.status == CANCELLED:
        problems.append("the conversation holds a cancelled registration")
    if reg is not None and state in AFTER_AFFILIATION and reg.affiliation is None:
        problems.append(f"{state} with no affiliation")
    if state is State.OTP and conv.otp_challenge_id is None:
        problems.append("waiting for a code that was never sent")
    if state is State.SUMMARY and reg is not None and not all(
        (reg.school_code, reg.school_name, reg.province, reg.officer_first_name, reg.national_id, reg.phone)
    ):
        problems.append("summary of an incomplete registration")
    if state in (State.LETTER, State.SUBMITTED) and reg is not None and (
        reg.confirmed_at is None or reg.letter_version < 1 or reg.status == DRAFT
    ):
        problems.append(f"{state} without a confirmed letter")
    if reg is not None and reg.confirmed_at is None and state in (State.LETTER, State.SUBMITTED):
        problems.append("letter step before confirmation")
    return problems


def problems(conv: Conversation | None, reg: Registration | None) -> list[str]:
    if conv is None:
        return []
    return state_problems(conv, reg) + (field_problems(reg) if reg is not None else [])


def leaks(answer: str, typed: str = "") -> list[str]:
    """Internal keys or unfilled placeholders in an answer (those the user typed, echoed, aside)."""
    return [m for m in _LEAK.findall(answer) if m not in typed]


@cache
def error_prefixes(lang: str) -> tuple[str, ...]:
    """The opening words of every "that answer was refused" sentence, in `lang`."""
    keys = [k for k in catalogue() if k.startswith("err_")]
    keys += ["too_long", "empty_answer", "expect_choice", "stale_button", "expect_text"]
    prefixes = []
    for key in keys:
        raw = catalogue()[key].get(lang, catalogue()[key]["th"]).strip()
        prefix = raw.split("{", 1)[0].strip()
        if len(prefix) >= 6:
            prefixes.append(prefix)
    return tuple(prefixes)


def refused(answer: str, lang: str = "th") -> bool:
    return any(answer.startswith(p) for p in error_prefixes(lang))


INTERNAL_ERROR = {text("internal_error", lang) for lang in LANGUAGES}
