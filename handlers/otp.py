"""One-time codes by SMS: issuing them within the limits, and checking what the officer types.

Each code comes from a fresh `pyotp.random_base32()` secret as `HOTP(secret).at(0)`; only the
secret is stored (encrypted), never the code. Wrong tries are counted per phone number, so
asking for a new code does not buy new tries.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

import pyotp

from handlers import sms_budget
from handlers.messages import Sms
from handlers.normalize import compact_number
from handlers.turn import Turn
from handlers.validation import Invalid, mask_phone
from storage import OtpChallenge
from templates import text

log = logging.getLogger(__name__)

DAY, HOUR = timedelta(days=1), timedelta(hours=1)


def _until(times: list[datetime], limit: int, window: timedelta) -> datetime | None:
    """When the number of sends in the window drops below `limit` again (None: it already is)."""
    if len(times) < limit:
        return None
    return times[len(times) - limit] + window


async def request_code(turn: Turn, phone: str) -> Invalid | None:
    """Send a new code to `phone`, or say which limit stops it and until when."""
    policy, repo, now = turn.settings.otp, turn.repo, turn.now
    guard = await repo.otp.guard(phone)
    if guard.locked_until and guard.locked_until > now:
        return Invalid("otp_locked", {"until": turn.when(guard.locked_until)})

    to_phone = await repo.otp.sent_to_phone(phone, since=now - DAY)
    if to_phone and now - to_phone[-1] < policy.resend_after:
        wait = policy.resend_after - (now - to_phone[-1])
        return Invalid("otp_cooldown", {"seconds": math.ceil(wait.total_seconds())})
    last_hour = [t for t in to_phone if t > now - HOUR]
    if until := _until(last_hour, policy.per_phone_hour, HOUR):
        return Invalid("otp_phone_hour", {"limit": policy.per_phone_hour, "until": turn.when(until)})
    if until := _until(to_phone, policy.per_phone_day, DAY):
        return Invalid("otp_phone_day", {"limit": policy.per_phone_day, "until": turn.when(until)})
    by_user = await repo.otp.sent_for_user(turn.conv.channel, turn.conv.user_id, since=now - DAY)
    if until := _until(by_user, policy.per_user_day, DAY):
        return Invalid("otp_user_day", {"limit": policy.per_user_day, "until": turn.when(until)})
    if refused := await sms_budget.refusal(turn):  # all users together: the operator's budget
        return refused

    if turn.challenge is not None:
        await repo.otp.close(turn.challenge.id, now)  # only the newest code is valid
    secret = pyotp.random_base32()
    challenge = await repo.otp.create(
        phone, secret, turn.conv.channel, turn.conv.user_id, now, expires_at=now + policy.ttl
    )
    turn.challenge = challenge
    turn.sms.append(Sms(phone, otp_challenge_id=challenge.id, lang=turn.conv.lang, notify=turn.inbound.sender))
    log.info("OTP %d issued to %s", challenge.id, mask_phone(phone))
    await sms_budget.after_sending(turn)
    return None


def sms_text(challenge: OtpChallenge, lang: str, now: datetime) -> str | None:
    """The SMS that carries a code, made when it is sent (the code is never stored); None once
    the code is used, replaced or expired: an SMS delayed by a restart is not worth sending then."""
    if challenge.closed_at is not None or now >= challenge.expires_at:
        return None
    minutes = max(1, math.ceil((challenge.expires_at - now).total_seconds() / 60))
    return text("sms_otp", lang, code=pyotp.HOTP(challenge.secret).at(0), minutes=minutes)


def still_valid(challenge: OtpChallenge, now: datetime) -> bool:
    """Whether this code can still be typed (not used, replaced or expired)."""
    return challenge.closed_at is None and now < challenge.expires_at


def looks_like_code(typed: str) -> bool:
    code = compact_number(typed)
    return len(code) == 6 and code.isdigit()


async def _replaced(turn: Turn, current: OtpChallenge, code: str) -> bool:
    """Whether `code` is the code of one of this officer's earlier challenges that a newer one
    replaced while it was still valid: an SMS overtaken by the next, not a guess."""
    earlier = await turn.repo.otp.replaced_for_user(turn.conv.channel, turn.conv.user_id, current.id, turn.now)
    return any(pyotp.HOTP(c.secret).verify(code, 0) for c in earlier)


async def check_code(turn: Turn, typed: str) -> Invalid | None:
    """Check a typed code against the pending challenge; on success the phone is verified."""
    policy, repo, now, reg = turn.settings.otp, turn.repo, turn.now, turn.reg
    assert reg is not None
    challenge = turn.challenge
    if challenge is None:
        return Invalid("otp_no_code")
    guard = await repo.otp.guard(challenge.phone)
    if guard.locked_until and guard.locked_until > now:
        return Invalid("otp_locked", {"until": turn.when(guard.locked_until)})
    if challenge.closed_at is not None:
        return Invalid("otp_no_code")
    if now >= challenge.expires_at:
        return Invalid("otp_expired")
    code = compact_number(typed)
    if not (len(code) == 6 and code.isdigit()):
        return Invalid("otp_format")  # a typo in form is not a guess: it does not count

    # pyotp compares in constant time (hmac.compare_digest).
    if not pyotp.HOTP(challenge.secret).verify(code, 0):
        if await _replaced(turn, challenge, code):  # not counted as a wrong try
            return Invalid("otp_replaced", {"phone": mask_phone(challenge.phone)})
        guard.failures += 1
        log.info("wrong OTP for %s (%d/%d)", mask_phone(challenge.phone), guard.failures, policy.max_failures)
        if guard.failures >= policy.max_failures:
            guard.failures, guard.locked_until = 0, now + policy.lockout
            await repo.otp.save_guard(guard)
            await repo.otp.close(challenge.id, now)
            return Invalid("otp_locked", {"until": turn.when(guard.locked_until)})
        await repo.otp.save_guard(guard)
        return Invalid("otp_wrong", {"left": policy.max_failures - guard.failures})

    await repo.otp.close(challenge.id, now)
    guard.failures, guard.locked_until = 0, None
    await repo.otp.save_guard(guard)
    previous = reg.phone
    reg.phone, reg.phone_verified_at = challenge.phone, now
    turn.challenge = None
    await turn.audit("phone_verified", "changed" if previous and previous != challenge.phone else "")
    return None
