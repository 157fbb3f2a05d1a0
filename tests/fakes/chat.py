"""A chat platform that keeps what the outbox delivered to it, for the core's tests."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from bot.letter_files import LetterFiles
from bot.sender import Policy, Result, Sent, Unit
from handlers.messages import Address, Outbound, decode


@dataclass
class RecordingChat:
    documents: LetterFiles
    channel: str = "test"
    policy: Policy = field(default_factory=lambda: Policy(concurrency=16))
    delivered: list[tuple[int, Outbound]] = field(default_factory=list)  # (outbox row id, message with `to`)

    async def deliver(self, unit: Unit) -> Result:
        for row in unit.rows:
            message = decode(row.payload, row.replace_key)
            if message.document is not None:
                message = replace(message, document=await self.documents.document(message.document))
            self.delivered.append((row.id, replace(message, to=Address(self.channel, unit.chat_id))))
        return Sent()
