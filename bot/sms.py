"""SMS gateways behind the core's `SmsGateway` interface (handlers/dispatch.py), and the
outbox's SMS sender.

`console` prints locally (development only); `webhook` POSTs `{to, text}` as JSON with a
bearer token and an `Idempotency-Key` header (the same for every try of one message) to
KIDDIARY_SMS_URL; `twilio` calls Twilio's Messages API (KIDDIARY_SMS_URL overrides its base
URL, for tests). Both network gateways try again, with backoff, only what the gateway surely did
not send (it could not be reached, or answered 429 or 503), then raise SmsError. A timeout, a
dropped connection or another 5xx may have been sent: it is not sent again (an SMS costs money,
and a resend would go out twice on a gateway that ignores the key) but raised as
SmsOutcomeUnknown, which the limits count as sent.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import sys
from typing import TextIO

import aiohttp

from bot.config import Config, ConfigError
from bot.sender import Policy, Refused, Result, Retry, Sent, Unit, backoff
from handlers.dispatch import SMS, Dispatcher
from handlers.messages import decode_sms
from handlers.sms_gateway import SmsError, SmsGateway, SmsOutcomeUnknown
from handlers.validation import local_phone, mask_phone
from storage import OutboxRow

log = logging.getLogger(__name__)

ATTEMPTS = 3
TIMEOUT = aiohttp.ClientTimeout(total=15)
NOT_SENT = {429, 503}  # the gateway says it took nothing: safe to try again


class ConsoleGateway:
    """Prints each SMS locally instead of sending it: for development and the console chat.
    Refused in production by the configuration (KIDDIARY_ENV=production)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out

    async def send(self, phone: str, text: str, key: str | None = None) -> None:
        out = self._out or sys.stdout
        print(f"📱 SMS → {local_phone(phone)}: {text}", file=out, flush=True)


class _HttpGateway:
    backoff = 0.5  # seconds before the 2nd try, doubled each time
    timeout = TIMEOUT

    async def _post(self, url: str, **request: object) -> None:
        last = ""
        for attempt in range(ATTEMPTS):
            try:
                async with aiohttp.ClientSession(timeout=self.timeout) as session, session.post(
                    url, **request  # type: ignore[arg-type]
                ) as response:
                    if response.status < 300:
                        return
                    last = f"HTTP {response.status}"
                    if response.status >= 500 and response.status not in NOT_SENT:
                        raise SmsOutcomeUnknown(last)  # it may have gone out: never blindly again
                    if response.status not in NOT_SENT:
                        break
            except aiohttp.ClientConnectorError as e:  # never reached the gateway: nothing was sent
                last = type(e).__name__
            except (aiohttp.ClientError, TimeoutError) as e:  # sent, and then no clear answer
                raise SmsOutcomeUnknown(type(e).__name__) from e
            if attempt < ATTEMPTS - 1:
                await asyncio.sleep(self.backoff * 2**attempt)
        raise SmsError(last)


class WebhookGateway(_HttpGateway):
    def __init__(self, url: str, token: str | None) -> None:
        self.url, self.token = url, token

    async def send(self, phone: str, text: str, key: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if key:
            headers["Idempotency-Key"] = key
        await self._post(self.url, json={"to": phone, "text": text}, headers=headers)


class TwilioGateway(_HttpGateway):
    def __init__(self, base_url: str, credentials: str, sender: str) -> None:
        self.account, _, self.secret = credentials.partition(":")
        self.url = f"{base_url}/2010-04-01/Accounts/{self.account}/Messages.json"
        self.sender = sender
        self.authorization = "Basic " + base64.b64encode(f"{self.account}:{self.secret}".encode()).decode()

    async def send(self, phone: str, text: str, key: str | None = None) -> None:
        await self._post(self.url, data={"To": phone, "From": self.sender, "Body": text},
                         headers={"Authorization": self.authorization})


def make_gateway(config: Config, out: TextIO | None = None, serving: bool = False) -> SmsGateway:
    """The configured gateway. `serving`: for `run` with LINE or Telegram, where the console
    gateway is refused: it would print strangers' one-time codes and new accounts' passwords on
    this machine's output (and its logs), and nobody would get them by SMS."""
    if config.sms_provider == "console":
        if serving and (config.telegram_enabled or config.line_enabled):
            raise ConfigError("KIDDIARY_SMS_PROVIDER", "'console' prints one-time codes and passwords on this "
                              "machine instead of sending them: with LINE or Telegram on, set webhook or twilio")
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


class SmsSender:
    """Sends the outbox's SMS. A one-time code's text is made only now, from its challenge, and
    not at all once the code has expired (after a long outage or a restart). A code the gateway
    gave up on is refused at once (the officer is told, and may ask for a new one); any other
    SMS is tried again, with backoff, for a day. One the gateway may have sent (a timeout) is
    not sent again: a code counts as sent, and the officer is told it may still come."""

    channel = SMS
    policy = Policy(concurrency=8, idempotent=True)  # the gateway gets an Idempotency-Key

    def __init__(self, gateway: SmsGateway, dispatcher: Dispatcher) -> None:
        self.gateway = gateway
        self.dispatcher = dispatcher

    async def deliver(self, unit: Unit) -> Result:
        row = unit.rows[0]
        sms = decode_sms(row.payload)
        text = await self.dispatcher.sms_text(sms)
        if text is None:
            log.info("SMS to %s not sent: its code is no longer valid", mask_phone(sms.phone))
            return Sent()
        try:
            await self.gateway.send(sms.phone, text, key=row.idem_key)
        except SmsOutcomeUnknown as e:  # perhaps sent: counted as sent, and not sent again
            log.error("SMS to %s may or may not have been sent: %s", mask_phone(sms.phone), e)
            await self.dispatcher.sms_unknown(sms)
            return Sent()
        except SmsError as e:
            log.error("SMS to %s failed: %s", mask_phone(sms.phone), e)
            if sms.otp_challenge_id is not None:
                return Refused(str(e))
            return Retry(backoff(unit.attempt), str(e))
        return Sent()

    async def refused(self, row: OutboxRow) -> None:
        await self.dispatcher.sms_not_sent(decode_sms(row.payload))
