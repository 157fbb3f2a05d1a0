"""/find for reviewers: what the text looks like decides which index answers it.

A mobile number goes to the phone's keyed hash, a reference (as read back over the phone,
with O for 0 and I or L for 1) to the reference, digits to the school code, anything else
to the officer's name words (keyed hashes: the name stays encrypted) and, when it names no
officer, to any part of a school name.
A query longer than any of these is refused before the database is asked. Every /find is
written to the audit log: who looked, how, and which registrations they saw (not the text
they typed, which may be someone's phone or name).
"""

from __future__ import annotations

import re

from handlers import validation as v
from handlers.messages import Choice
from handlers.normalize import clean_text, compact_number
from handlers.turn import Turn
from storage.models import Registration
from storage.search import name_words

MAX_QUERY = 100  # characters: a school's full name fits; anything longer is no search
_REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's, as references are made
_CONFUSED = str.maketrans({"O": "0", "I": "1", "L": "1"})
_REF_BODY = re.compile(f"[{_REF_ALPHABET}]{{8}}")


def as_reference(query: str) -> str | None:
    """The reference `query` is, read back with the usual confusions; None if it is none."""
    body = re.sub(r"[\s\-_.]", "", query.upper())
    body = body.removeprefix("KD")
    body = body.translate(_CONFUSED)
    if not _REF_BODY.fullmatch(body) or (body.isdigit() and not query.upper().lstrip().startswith("KD")):
        return None  # eight digits alone are more likely a school code
    return f"KD-{body[:4]}-{body[4:]}"


def _without_title(query: str) -> str:
    """A name as typed, without the title in front ("นางสาวสมศรี" is "สมศรี")."""
    folded = query.casefold()
    for title in sorted(v.TITLES, key=len, reverse=True):
        if folded.startswith(title.casefold()):
            return query[len(title):]
    return query


async def search(turn: Turn, query: str) -> tuple[str, list[Registration]]:
    """How the query was read ("phone", "ref", "school_code", "name", "school_name") and what
    it found."""
    search_ = turn.repo.search
    phone = v.thai_mobile(query)
    if isinstance(phone, str):
        return "phone", await search_.by_phone(phone)
    if ref := as_reference(query):
        found = await search_.by_ref(ref)
        if found:
            return "ref", found
    code = compact_number(query)
    if code.isdigit():
        return "school_code", await search_.by_school_code(code)
    # The officer's name words by their index first; only text that names nobody is looked for
    # in the school names (a scan of the table: a school name is matched on any part of it).
    if by_name := await search_.by_name(name_words(_without_title(query))):
        return "name", by_name
    return "school_name", await search_.by_school_name(query)


async def find(turn: Turn, query: str) -> None:
    query = clean_text(query)
    if not query:
        turn.say("review_usage")
        return
    if len(query) > MAX_QUERY:  # before any SQL
        turn.say("review_find_too_long", count=len(query), max=MAX_QUERY)
        return
    how, found = await search(turn, query)
    await turn.repo.audit_log.add(turn.now, turn.actor, "find", {"by": how, "found": [r.ref for r in found]})
    if not found:
        turn.say("review_nothing_found", query=query)
        return
    lines = [turn.t("review_found_line", ref=r.ref, school=r.school_name or "-",
                    status=turn.t(f"status_name_{r.status}")) for r in found]
    choices = [Choice(r.ref, f"review:show:{r.ref}") for r in found]
    turn.say("review_found", lines="\n".join(lines), choices=choices)
