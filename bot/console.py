"""The console channel: the real core in a terminal, one line in, the bot's replies out.

Besides plain answers it understands a few lines of its own (not sent to the core):
`/photo PATH` and `/file PATH` send an attachment, `/as reviewer`, `/as admin` and
`/as officer NAME` change who is speaking, `/quit` ends. A bare number of one or two
digits picks that button of the last message.
"""

from __future__ import annotations

import asyncio
import mimetypes
import sys
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from bot.delivery import Delivery
from bot.letter_files import LetterFiles
from bot.sender import Policy, Result, Sent, Unit
from handlers.dispatch import Dispatcher
from handlers.messages import Address, Attachment, Choice, Inbound, Kind, Outbound, decode

CHANNEL = "console"
REVIEWER = Address(CHANNEL, "reviewer")
ADMIN = Address(CHANNEL, "admin")
REVIEW_CHAT = Address(CHANNEL, "reviewers")

INTRO = """KidDiary console chat: you are the officer "{user}".
Local commands: /photo PATH, /file PATH, /as reviewer, /as admin, /as officer NAME, /quit.
Type the number of a button to press it."""


class ConsoleChat:
    channel = CHANNEL
    policy = Policy(concurrency=1)  # one terminal: messages print one after another

    def __init__(
        self,
        dispatcher: Dispatcher,
        documents: LetterFiles,
        outbox: Path,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.documents = documents
        self.outbox = outbox
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.user = "officer"
        self.buttons: list[Choice] = []

    def print(self, line: str = "") -> None:
        print(line, file=self.stdout, flush=True)

    async def run(self, delivery: Delivery) -> None:
        self.delivery = delivery
        self.print(INTRO.format(user=self.user))
        await self.send(Inbound(CHANNEL, self.user, Kind.FOLLOW))  # greets, or resumes where they left off
        while True:
            if self.stdin.isatty():
                print(f"[{self.user}] > ", end="", file=self.stdout, flush=True)
            line = await asyncio.to_thread(self.stdin.readline)
            if not line:  # end of input
                return
            line = line.rstrip("\n")
            if line.strip() == "/quit":
                return
            inbound = self.local_command(line.strip()) if line.startswith("/") else None
            if inbound is False:
                continue
            await self.send(inbound or self.typed(line))

    def typed(self, line: str) -> Inbound:
        number = line.strip()
        # A button's number has at most two digits: a longer number (a one-time code such as
        # 000002, a school code) is an answer, typed as such.
        if number.isdigit() and len(number) <= 2 and 1 <= int(number) <= len(self.buttons):
            return Inbound(CHANNEL, self.user, Kind.BUTTON, payload=self.buttons[int(number) - 1].payload)
        return Inbound(CHANNEL, self.user, Kind.TEXT, text=line)

    def local_command(self, line: str) -> Inbound | bool | None:
        """An Inbound for /photo and /file; False when the line was for the console itself."""
        command, _, argument = line.partition(" ")
        argument = argument.strip()
        if command in ("/photo", "/file"):
            path = Path(argument).expanduser()
            if not path.is_file():
                self.print(f"(console) no such file: {argument}")
                return False
            kind = Kind.PHOTO if command == "/photo" else Kind.FILE
            mime = mimetypes.guess_type(path.name)[0]
            return Inbound(CHANNEL, self.user, kind, attachment=Attachment(path.read_bytes(), path.name, mime))
        if command == "/as":
            role, _, name = argument.partition(" ")
            if role in ("reviewer", "admin"):
                self.user = role
            elif role == "officer":
                self.user = name.strip() or "officer"
            else:
                self.print("(console) use: /as reviewer | /as admin | /as officer NAME")
                return False
            self.buttons = []
            self.print(f"(console) you are now {self.user}")
            return False
        return None  # a command for the bot, such as /status

    async def send(self, inbound: Inbound) -> None:
        """The line to the bot; back when everything it answered is printed."""
        await self.dispatcher.handle(inbound)
        await self.dispatcher.settle()
        await self.delivery.idle()

    async def deliver(self, unit: Unit) -> Result:
        """A message from the outbox, printed (its document written to the data folder)."""
        for row in unit.rows:
            message = decode(row.payload, row.replace_key)
            if message.document is not None:
                message = replace(message, document=await self.documents.document(message.document))
            self.show(message, Address(CHANNEL, unit.chat_id))
        return Sent()

    def show(self, message: Outbound, to: Address) -> None:
        if to != Address(CHANNEL, self.user):
            self.print(f"→ {to}:")
        self.print("บอท: " + message.text.replace("\n", "\n      "))
        if message.document is not None:
            self.outbox.mkdir(parents=True, exist_ok=True)
            path = self.outbox / message.document.filename
            path.write_bytes(message.document.data)
            self.print(f"      📄 {path}")
        choices = [c for c in message.choices if c.action == "reply"]  # no camera or contact button here
        if to == Address(CHANNEL, self.user):
            self.buttons = choices
        if choices:
            self.print("      " + "  ".join(f"[{i}] {c.label}" for i, c in enumerate(choices, 1)))
        self.print()
