"""An admin loads the school directory from chat: `/import` (or `/import replace`), then the CSV.

What an admin would expect: `/import` then the file; or just the CSV file, which is taken as
an import (add or update) since a CSV is never a signed letter. `/import replace` makes the
next file replace the whole directory; the request holds for `REQUEST_VALID` and is written
to the audit log (who asked to replace the directory is worth knowing anyway), which is where
the next turn finds it. On Telegram the file may carry `/import` or `/import replace` as its
caption. Only admins, only in a private chat: anyone else's file is never downloaded for
this, and anyone else's `/import` is refused with nothing changed. The import is all or
nothing, like the shell's `kiddiary-bot import-schools`, and reads files the same way
(handlers/directory.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from handlers import directory
from handlers.messages import Inbound, Kind
from handlers.normalize import fold
from handlers.turn import CoreSettings, Turn
from storage import Repository
from storage.audit_log import LogEntry

REQUESTED, IMPORTED = "directory_import_requested", "directory_imported"
REQUEST_VALID = timedelta(minutes=30)
CSV_TYPES = frozenset({"text/csv", "text/comma-separated-values", "application/csv", "text/x-csv"})
REPLACE_WORDS = frozenset({"replace", "แทนที่"})


def _caption(inbound: Inbound) -> tuple[bool, str] | None:
    """(is /import, its argument) of a file's caption."""
    word, _, argument = fold(inbound.text).partition(" ")
    return (True, argument.strip()) if word == "/import" else None


def looks_like_csv(inbound: Inbound) -> bool:
    attachment = inbound.attachment
    if attachment is None:
        return False
    return (attachment.filename or "").lower().endswith(".csv") or (attachment.mime_type or "") in CSV_TYPES


async def pending(repo: Repository, actor: str, now: datetime) -> LogEntry | None:
    """This admin's `/import` not followed by an import yet, if recent enough."""
    entry = await repo.audit_log.latest(actor, (REQUESTED, IMPORTED), now - REQUEST_VALID)
    return entry if entry is not None and entry.kind == REQUESTED else None


async def wanted(repo: Repository, settings: CoreSettings, inbound: Inbound, now: datetime) -> bool:
    """Whether this file is a directory to import: decides whether it is downloaded at all.
    Runs inside the caller's transaction."""
    if inbound.kind is not Kind.FILE or inbound.group_id is not None or inbound.sender not in settings.admins:
        return False
    if looks_like_csv(inbound) or _caption(inbound) is not None:
        return True
    return await pending(repo, str(inbound.sender), now) is not None


async def request(turn: Turn, argument: str = "") -> None:
    """`/import [replace]`: the next file (within REQUEST_VALID) is the directory."""
    if turn.inbound.sender not in turn.settings.admins:
        turn.say("not_allowed")
        return
    if argument and argument not in REPLACE_WORDS:
        turn.say("dir_usage")
        return
    replace = argument in REPLACE_WORDS
    await turn.repo.audit_log.add(turn.now, turn.actor, REQUESTED, {"replace": replace})
    turn.say("dir_send_file_replace" if replace else "dir_send_file")


async def take_file(turn: Turn) -> bool:
    """A file sent as the directory: imported (all or nothing) and the admin told the outcome.
    False when the file is not one (the conversation goes on as for any file)."""
    parsed = turn.inspection
    if not isinstance(parsed, directory.DirectoryFile):
        if _caption(turn.inbound) is not None and turn.inbound.sender not in turn.settings.admins:
            turn.say("not_allowed")  # someone else's "/import" caption: refused, never downloaded
            return True
        return False
    caption = _caption(turn.inbound)
    if caption is not None and caption[1] and caption[1] not in REPLACE_WORDS:
        turn.say("dir_usage")
        return True
    request_ = await pending(turn.repo, turn.actor, turn.now)
    replace = (caption is not None and caption[1] in REPLACE_WORDS) or (
        caption is None and request_ is not None and bool(request_.detail.get("replace")))
    if parsed.problems:
        turn.say("dir_refused", count=len(parsed.problems), problems=directory.report(parsed.problems, turn.conv.lang))
        return True
    change = await turn.repo.directory.load(parsed.schools, replace=replace)
    assert turn.inbound.attachment is not None
    await turn.repo.audit_log.add(turn.now, turn.actor, IMPORTED, {
        "file": turn.inbound.attachment.filename or "", "replace": replace, "added": change.added,
        "updated": change.updated, "removed": change.removed, "total": change.total,
    })
    turn.say("dir_replaced" if replace else "dir_imported", added=change.added, updated=change.updated,
             removed=change.removed, total=change.total)
    return True
