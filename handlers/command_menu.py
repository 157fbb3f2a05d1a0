"""The commands a platform lists when "/" is typed (Telegram's command menu), by who sees them:
officers in private chats, reviewers in the review chats, and both in a reviewer's own chat.

The words come from the templates (`command_<name>`); the adapter only hands the lists over.
"""

from __future__ import annotations

from templates import text

OFFICER = ("start", "status", "letter", "help", "back", "cancel", "new")
REVIEWER = ("pending", "show", "approve", "reject", "find", "help")


def menu(names: tuple[str, ...], lang: str) -> list[tuple[str, str]]:
    """(command, description) for each name, without repeats, in `lang`."""
    return [(name, text(f"command_{name}", lang)) for name in dict.fromkeys(names)]
