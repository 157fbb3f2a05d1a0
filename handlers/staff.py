"""Reviewers and admins: who has which role, `/reviewer list|add|remove`, and the help each role gets.

Roles are kept apart on purpose: admins manage reviewers and see the figures, reviewers decide
registrations. Being an admin gives no reviewing; an admin who should review is listed as a
reviewer too (configured, or added with `/reviewer add`).

An id to add is checked for its channel's shape, so a typo does not silently make a reviewer
nobody can ever be: Telegram ids are numbers (negative for groups), LINE ids are U (users),
C (groups) or R (rooms) and 32 hex digits, console ids are the names typed after `/as`.
"""

from __future__ import annotations

import re

from handlers.messages import Address, Outbound
from handlers.turn import Turn

ID_SHAPES = {
    "telegram": re.compile(r"-?[1-9][0-9]{0,19}"),
    "line": re.compile(r"[UCR][0-9a-f]{32}"),
    "console": re.compile(r"\S{1,64}"),
}


async def added_reviewers(turn: Turn) -> list[Address]:
    """Reviewers added on chat by an admin, oldest first."""
    return [Address(c, u) for c, u in await turn.repo.reviewers()]


async def is_reviewer(turn: Turn, who: Address | None = None) -> bool:
    who = who or turn.inbound.sender
    return who in turn.settings.reviewers or who in await added_reviewers(turn)


def is_admin(turn: Turn) -> bool:
    return turn.inbound.sender in turn.settings.admins


def shape_problem(address: Address) -> str | None:
    """The template key explaining what is wrong with `address`, or None when it looks right."""
    shape = ID_SHAPES.get(address.channel)
    if shape is None:
        return "staff_bad_channel"
    return None if shape.fullmatch(address.id) else f"staff_bad_id_{address.channel}"


async def manage_reviewers(turn: Turn, args: list[str]) -> None:
    """`/reviewer list`, `/reviewer add channel:id`, `/reviewer remove channel:id` (admins only)."""
    if not is_admin(turn):
        turn.say("not_allowed")
        return
    verb = args[0].lower() if args else ""
    if verb == "list" and len(args) == 1:
        await list_reviewers(turn)
        return
    try:
        address = Address.parse(args[1]) if verb in ("add", "remove") and len(args) == 2 else None
    except ValueError:
        address = None
    if address is None:
        turn.say("staff_reviewer_usage")
        return
    if verb == "remove":  # any id: one added before ids were checked can still be taken off
        removed = await turn.repo.remove_reviewer(address.channel, address.id)
        turn.say("review_reviewer_removed" if removed else "review_reviewer_not_found", who=str(address))
        return
    if address in turn.settings.reviewers:  # already there: say so, whatever its shape
        turn.say("staff_reviewer_already_configured", who=str(address))
    elif address in await added_reviewers(turn):
        turn.say("staff_reviewer_already_added", who=str(address))
    elif problem := shape_problem(address):
        turn.say(problem, id=address.id, channel=address.channel)
    else:
        await turn.repo.add_reviewer(address.channel, address.id, turn.actor, turn.now)
        turn.say("review_reviewer_added", who=str(address))


async def list_reviewers(turn: Turn) -> None:
    configured = sorted(turn.settings.reviewers, key=str)
    added = [a for a in await added_reviewers(turn) if a not in turn.settings.reviewers]
    if not configured and not added:
        turn.say("staff_reviewers_none")
        return
    lines = [turn.t("staff_reviewer_line_configured", who=str(a)) for a in configured]
    lines += [turn.t("staff_reviewer_line_added", who=str(a)) for a in added]
    turn.say("staff_reviewers", count=len(lines), lines="\n".join(lines))


async def role_help(turn: Turn) -> list[Outbound]:
    """The commands of the sender's roles beyond the officer's: reviewers', then admins'."""
    keys = (["help_reviewer"] if await is_reviewer(turn) else []) + (["help_admin"] if is_admin(turn) else [])
    return [Outbound(turn.t(key)) for key in keys]
