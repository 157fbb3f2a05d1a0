"""The buttons that act on one of an officer's registrations by its reference
(`reg:<action>:<ref>`), wherever the conversation is: made here, with nothing of the steps, so
the review can put them on a rejection notice (handlers/registrations.py acts on them)."""

from __future__ import annotations

from handlers.messages import Choice
from storage.models import Registration
from templates import text

PREFIX = "reg:"


def is_payload(payload: str | None) -> bool:
    return payload is not None and payload.startswith(PREFIX)


def rejection_choices(reg: Registration, lang: str) -> tuple[Choice, ...]:
    """The buttons of a rejection notice: they name the rejected registration, so they work
    whichever registration the officer is filling in when the notice arrives."""
    return (Choice(text("btn_reg_photo", lang), f"{PREFIX}photo:{reg.ref}"),
            Choice(text("btn_letter_edit", lang), f"{PREFIX}edit:{reg.ref}"))
