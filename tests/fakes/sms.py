"""An SMS gateway that keeps what it was asked to send, for tests to read codes from."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from handlers.sms_gateway import SmsError


@dataclass
class RecordingSmsGateway:
    sent: list[tuple[str, str]] = field(default_factory=list)
    fail_next: int = 0  # how many of the next sends raise SmsError, like a gateway outage

    async def send(self, phone: str, text: str, key: str | None = None) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise SmsError("gateway unavailable")
        self.sent.append((phone, text))

    def last_code(self, phone: str | None = None) -> str:
        for to, text in reversed(self.sent):
            if phone is None or to == phone:
                return re.search(r"\b(\d{6})\b", text).group(1)  # type: ignore[union-attr]
        raise AssertionError("no SMS was sent")
