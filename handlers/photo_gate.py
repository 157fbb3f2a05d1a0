"""When a photo or file is worth decoding, and how often.

Decoding a 40-megapixel photo costs about half a second of CPU and ~200 MB, so it is done only
for an officer at the letter steps (a registration waiting for its signed letter; the
dispatcher asks the repository), never in groups, and at most `LIMIT` times in `WINDOW` per
chat user: beyond that the photo is neither downloaded nor decoded, and the officer is told
when to send it again. One user's messages already run one at a time (the dispatcher's lock per
user); `slots` bounds how many photos are decoded at once over all users, which bounds memory.

The counts live in memory: a restart forgets them, which costs at most one more window.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Hashable
from datetime import datetime, timedelta

from handlers.validation import Invalid

LIMIT = 6  # photos decoded per user in WINDOW: retakes of a blurred letter fit easily
WINDOW = timedelta(minutes=10)
SLOTS = 2  # photos decoded at once, all users together (the machine's cores, and memory)
FORGET_AT = 10_000  # users remembered before the ones with nothing in the window are dropped


class PhotoGate:
    def __init__(self, limit: int = LIMIT, window: timedelta = WINDOW, slots: int = SLOTS) -> None:
        self.limit, self.window = limit, window
        self.decoding = asyncio.Semaphore(slots)  # held around each decode
        self._seen: dict[Hashable, deque[datetime]] = {}

    def admit(self, who: Hashable, now: datetime) -> Invalid | None:
        """None, and counted, when `who` may have a photo decoded now; otherwise why not."""
        if len(self._seen) >= FORGET_AT:
            self._forget(now)
        times = self._seen.setdefault(who, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) >= self.limit:
            wait = times[0] + self.window - now
            return Invalid("photos_too_often", {"minutes": max(1, math.ceil(wait.total_seconds() / 60))})
        times.append(now)
        return None

    def _forget(self, now: datetime) -> None:
        for who in [w for w, times in self._seen.items() if not times or now - times[-1] >= self.window]:
            del self._seen[who]
