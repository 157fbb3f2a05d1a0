"""SMS gateways behind the core's `SmsGateway` interface (handlers/dispatch.py).

`console` prints locally (development only); `webhook` POSTs `{to, text}` as JSON with a
bearer token to KIDDIARY_SMS_URL; `twilio` calls Twilio's Messages API (KIDDIARY_SMS_URL
overrides its base URL, for tests). Both network gateways time out, retry 5xx and 429 with
backoff a few times, then raise SmsError; the dispatcher logs it with the phone masked.
"""

from __future__ import annotations

import asyncio
import base64
import sys
from typing import TextIO

import aiohttp

from bot.config import Config, ConfigError
from handlers.dispatch import SmsError, SmsGateway
from handlers.validation import local_phone

ATTEMPTS = 3
TIMEOUT = aiohttp.ClientTimeout(total=15)
RETRYABLE = {429, 500, 502, 503, 504}


class ConsoleGateway:
    """Prints each SMS locally instead of sending it: for development and the console chat.
    Refused in production by the configuration (KIDDIARY_ENV=production)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out

    async def send(self, phone: str, text: str) -> None:
        out = self._out or sys.stdout
        print(f"📱 SMS → {local_phone(phone)}: {text}", file=out, flush=True)


class _HttpGateway:
    backoff = 0.5  # seconds before the 2nd try, doubled each time

    async def _post(self, url: str, **request: object) -> None:
        last = ""
        for attempt in range(ATTEMPTS):
            try:
                async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.post(
                    url, **request  # type: ignore[arg-type]
                ) as response:
                    if response.status < 300:
                        return
                    last = f"HTTP {response.status}"
                    if response.status not in RETRYABLE:
                        break
            except (aiohttp.ClientError, TimeoutError) as e:
                last = type(e).__name__
            if attempt < ATTEMPTS - 1:
                await asyncio.sleep(self.backoff * 2**attempt)
        raise SmsError(last)


class WebhookGateway(_HttpGateway):
    def __init__(self, url: str, token: str | None) -> None:
        self.url, self.token = url, token

    async def send(self, phone: str, text: str) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        await self._post(self.url, json={"to": phone, "text": text}, headers=headers)


class TwilioGateway(_HttpGateway):
    def __init__(self, base_url: str, credentials: str, sender: str) -> None:
        self.account, _, self.secret = credentials.partition(":")
        self.url = f"{base_url}/2010-04-01/Accounts/{self.account}/Messages.json"
        self.sender = sender
        self.authorization = "Basic " + base64.b64encode(f"{self.account}:{self.secret}".encode()).decode()

    async def send(self, phone: str, text: str) -> None:
        await self._post(self.url, data={"To": phone, "From": self.sender, "Body": text},
                         headers={"Authorization": self.authorization})


def make_gateway(config: Config, out: TextIO | None = None) -> SmsGateway:
    if config.sms_provider == "console":
        return ConsoleGateway(out)
    if config.sms_provider == "webhook":
        if not config.sms_url:
            raise ConfigError("KIDDIARY_SMS_URL", "the webhook SMS gateway needs its URL")
        return WebhookGateway(config.sms_url, config.sms_token)
    if not config.sms_token or ":" not in config.sms_token:
        raise ConfigError("KIDDIARY_SMS_TOKEN", "Twilio needs ACCOUNT_SID:AUTH_TOKEN")
    if not config.sms_sender:
        raise ConfigError("KIDDIARY_SMS_SENDER", "Twilio needs the sending number or sender id")
    return TwilioGateway(config.sms_url or "https://api.twilio.com", config.sms_token, config.sms_sender)
