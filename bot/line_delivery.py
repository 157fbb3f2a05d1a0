"""Sending to LINE what the outbox holds: the rows one turn wrote for one chat, exactly once.

By the reply token while it is fresh, else by push with an `X-Line-Retry-Key` derived from the
stored rows (LINE accepts a key once: a resend after a crash gets 409); broadcasts by multicast
under a key of their row. LINE cannot edit a message: a newer review card waits a few minutes
after the last one. Mixed into `LineChannel` (bot/line.py), which owns the API clients.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from linebot.v3.messaging import AsyncMessagingApi, PushMessageRequest, ReplyMessageRequest
from linebot.v3.messaging.exceptions import ApiException

from bot import line_api
from bot.line_messages import line_messages
from bot.links import LetterLinks
from bot.sender import Refused, Result, Retry, Sent, Unit, Unreachable, backoff
from handlers.messages import Outbound, decode

log = logging.getLogger(__name__)

MAX_MESSAGES = 5  # per reply or push request
REPLY_TOKEN_LIFETIME = timedelta(seconds=50)  # LINE's is about a minute; leave a margin
CARD_INTERVAL = timedelta(minutes=5)  # LINE cannot edit: a newer review card waits this long after the last
RETRYABLE = {500, 502, 503, 504}
RETRY_KEY_NAMESPACE = uuid.UUID("5b0c8a53-54b4-4f39-9a55-3a4a4f1d2c6e")


class LineSending:
    """The outbox's side of the LINE channel."""

    api: AsyncMessagingApi | None
    public_url: str
    links: LetterLinks
    clock: Callable[[], datetime]

    async def deliver(self, unit: Unit) -> Result:
        """The rows one turn wrote for one chat, in requests of at most five messages: the first
        by the reply token while it is fresh, the others (and all, once it is not) by push with
        an X-Line-Retry-Key made from the rows, the same after a restart: LINE accepts a key
        once (409 after), so a resend is never delivered twice.

        A reply token has no such key, but it works only once: when a try of ours may already
        have used it (an earlier try that got no answer, or a previous process), "invalid reply
        token" while the token is still young means that try delivered it."""
        assert self.api is not None
        if "multicast" in unit.rows[0].payload:
            return await self._multicast(unit)
        now = unit.now
        messages, refs = [], {}
        for row in unit.rows:
            message = decode(row.payload, row.replace_key)
            if row.replace_key:
                if message.edit_only:  # LINE cannot edit a message it delivered
                    continue
                previous = unit.previous.get(row.replace_key)
                if previous and (wait := CARD_INTERVAL - (now - previous[1])) > timedelta(0):
                    return Retry(wait.total_seconds(), "one card per registration every few minutes", throttled=True)
                refs[row.replace_key] = None
            messages += self._messages(message)
        chunks = [messages[i:i + MAX_MESSAGES] for i in range(0, len(messages), MAX_MESSAGES)]
        head = unit.rows[0]
        for index in range(unit.progress, len(chunks)):
            fresh = head.event_at is not None and now - head.event_at < REPLY_TOKEN_LIFETIME
            if index == 0 and head.reply_token and fresh and unit.notes.get("reply") != "refused":
                maybe_used = unit.recovered or "reply" in unit.notes
                outcome = await self._reply(head.reply_token, chunks[0], maybe_used)
                unit.notes["reply"] = outcome
                if outcome == "sent":
                    unit.progress = 1
                    continue
                if outcome != "refused":
                    return Retry(backoff(unit.attempt), f"reply: {outcome}")
            key = str(uuid.uuid5(RETRY_KEY_NAMESPACE, f"{head.idem_key}:{index}"))
            try:
                await self.api.push_message(PushMessageRequest(to=unit.chat_id, messages=chunks[index]),
                                            x_line_retry_key=key)
            except ApiException as e:
                if e.status == 409:  # accepted before under this key: delivered
                    pass
                elif e.status == 403 and unit.chat_id.startswith("U"):
                    return Unreachable()
                elif e.status == 429:
                    return Retry(backoff(unit.attempt), "429", throttled=True)
                elif e.status in RETRYABLE:
                    return Retry(backoff(unit.attempt), f"HTTP {e.status}")
                else:
                    return Refused(f"HTTP {e.status} {e.reason}: {e.body}"[:300])
            except (aiohttp.ClientError, TimeoutError) as e:  # the case the retry key exists for
                return Retry(backoff(unit.attempt), type(e).__name__)
            unit.progress = index + 1
        return Sent(refs)

    async def _multicast(self, unit: Unit) -> Result:
        """One broadcast row: the same text to up to 500 users in one request, under a retry key
        made from the row (a resend after a crash gets 409: delivered once). Users who blocked
        the bot are left out before (LINE skips them anyway, and says nothing about who)."""
        assert self.api is not None and len(unit.rows) == 1
        row = unit.rows[0]
        messages = self._messages(decode(row.payload))[:MAX_MESSAGES]
        key = str(uuid.uuid5(RETRY_KEY_NAMESPACE, f"{row.idem_key}:multicast"))
        try:
            await line_api.multicast(self.api, row.payload["multicast"], messages, key)
        except ApiException as e:
            if e.status == 409:
                return Sent()
            if e.status == 429:
                return Retry(backoff(unit.attempt), "429", throttled=True)
            if e.status in RETRYABLE:
                return Retry(backoff(unit.attempt), f"HTTP {e.status}")
            return Refused(f"HTTP {e.status} {e.reason}: {e.body}"[:300])
        except (aiohttp.ClientError, TimeoutError) as e:
            return Retry(backoff(unit.attempt), type(e).__name__)
        return Sent()

    async def _reply(self, token: str, messages: list[Any], maybe_used: bool) -> str:
        """"sent", "refused" (the token is no good: push instead), or what went wrong."""
        assert self.api is not None
        try:
            await self.api.reply_message(ReplyMessageRequest(reply_token=token, messages=messages))
            return "sent"
        except ApiException as e:
            token_refused = e.status == 400 and "reply token" in str(e.body or "").lower()
            if token_refused and maybe_used:
                log.info("LINE reply token already used: the earlier try delivered it")
                return "sent"
            if e.status == 400:  # the token is no good, or the request: a push says which
                log.info("LINE reply not accepted (%s); pushing instead", e.body)
                return "refused"
            return f"HTTP {e.status}"
        except (aiohttp.ClientError, TimeoutError) as e:
            return type(e).__name__

    def _messages(self, reply: Outbound) -> list[Any]:
        return line_messages(reply, self.public_url, self.links, self.clock())
