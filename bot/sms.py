"""SMS gateways behind the core's `SmsGateway` interface (handlers/dispatch.py)."""

from __future__ import annotations

import sys
from typing import TextIO

from bot.config import Config, ConfigError
from handlers.dispatch import SmsGateway
from handlers.validation import local_phone


class ConsoleGateway:
    """Prints each SMS locally instead of sending it: for development and the console chat.
    Refused in production by the configuration (KIDDIARY_ENV=production)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out

    async def send(self, phone: str, text: str) -> None:
        out = self._out or sys.stdout
        print(f"📱 SMS → {local_phone(phone)}: {text}", file=out, flush=True)


def make_gateway(config: Config, out: TextIO | None = None) -> SmsGateway:
    if config.sms_provider == "console":
        return ConsoleGateway(out)
    raise ConfigError("KIDDIARY_SMS_PROVIDER", f"{config.sms_provider!r} is not available in this version; use console")
