"""A registration's history as reviewers read it: each event as a sentence in their language.

The audit trail stores machine words (`phone_verified`, `letter_issued` with "version 2"); a
Thai card must not show them. Each known kind has a sentence (`history_<kind>` in the
templates) and the details it needs are read out of the stored detail. A kind without a
sentence (added later, and not worded yet) is shown as stored rather than hidden.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

from handlers.turn import Turn
from templates import has, text


class Event(Protocol):
    at: object
    actor: str
    kind: str
    detail: str


def _params(kind: str, detail: str, lang: str) -> dict[str, str]:
    """What the sentence of `kind` fills in, read from the stored detail."""
    if kind == "letter_issued":
        found = re.search(r"\d+", detail)
        return {"version": found.group(0) if found else "?"}
    if kind == "submitted":  # "signed letter 2, QR matched, signature blank" (older: "… QR matched")
        found = re.search(r"signed letter (\d+), QR (\w+), signature (\w+)", detail)
        number, qr, signature = found.groups() if found else ("?", detail.rsplit(" ", 1)[-1], "unchecked")
        qr = qr if qr == "matched" else "unverified"
        return {"number": number, "qr": text(f"review_qr_{qr}", lang),
                "signature": text(f"history_signature_{signature}", lang)}
    if kind == "rejected":
        from handlers.review import reason_text  # the reasons are worded with the review

        return {"reason": reason_text(detail, lang)}
    if kind in ("provisioned", "provision_failed"):
        return {"detail": detail[:200]}
    return {}


def event_text(kind: str, detail: str, lang: str) -> str:
    if kind == "phone_verified" and detail == "changed":
        kind = "phone_changed"
    if not has(f"history_{kind}"):
        return f"{kind} · {detail[:200]}" if detail else kind
    return text(f"history_{kind}", lang, **_params(kind, detail, lang))


def history_lines(turn: Turn, events: Iterable[Event]) -> str:
    """One line per event: when, what, who; in the reader's language."""
    lang = turn.conv.lang
    lines = []
    for e in events:
        who = text("history_system", lang) if e.actor == "system" else e.actor
        lines.append(f"{turn.when(e.at)} · {event_text(e.kind, e.detail, lang)} · {who}")  # type: ignore[arg-type]
    return "\n".join(lines)
