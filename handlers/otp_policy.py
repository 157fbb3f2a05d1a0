"""The limits on one-time codes, in one place (issue #2, NIST SP 800-63B)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class OtpPolicy:
    ttl: timedelta = timedelta(minutes=5)  # a code is valid this long, and once
    max_failures: int = 5  # wrong codes per phone (not per code) before a lockout
    lockout: timedelta = timedelta(hours=1)
    resend_after: timedelta = timedelta(seconds=60)
    per_phone_hour: int = 5
    per_phone_day: int = 10
    per_user_day: int = 10  # one chat user sending codes to many numbers is SMS pumping
    global_day: int = 20_000  # all codes in 24 hours: the operator's SMS bill has a ceiling
    # All codes in one hour: a flood of throwaway accounts takes at least 8 hours to use up the
    # day, time for the admins (alerted at 50% and 80% of the day) to pause or raise the cap.
    global_hour: int = 2_500
