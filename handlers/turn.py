"""`Turn`: everything one inbound message is handled with, and what handling it produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from handlers.attachments import Inspection
from handlers.directory import DirectoryFile
from handlers.messages import Address, Choice, Inbound, Outbound, Sms
from handlers.otp_policy import OtpPolicy
from handlers.validation import Invalid
from storage import Conversation, OtpChallenge, Registration, Repository, UploadStore
from templates import LANGUAGES, text

BANGKOK = timezone(timedelta(hours=7), "ICT")  # Thailand keeps no daylight saving time


@dataclass(frozen=True)
class CoreSettings:
    """The part of the configuration the conversation core needs (built by bot/config.py)."""

    otp: OtpPolicy = field(default_factory=OtpPolicy)
    admins: frozenset[Address] = frozenset()
    reviewers: frozenset[Address] = frozenset()
    seal_key: bytes = field(default=b"", repr=False)  # signs the QR seal on letters (storage.Crypto.signing_key)
    old_seal_keys: tuple[bytes, ...] = field(default=(), repr=False)  # seals made before a key rotation
    review_chats: tuple[Address, ...] = ()  # where new submissions are announced
    reminder_days: tuple[int, ...] = (7, 3, 1)  # reminders go this many days before the deadline


@dataclass
class Turn:
    inbound: Inbound
    conv: Conversation
    reg: Registration | None
    repo: Repository
    now: datetime
    settings: CoreSettings
    challenge: OtpChallenge | None = None  # the code the officer is expected to type, if any
    files: UploadStore | None = None
    # What the attachment turned out to be, if any: a photo or scan, or an admin's school directory.
    inspection: Inspection | Invalid | DirectoryFile | None = None
    replies: list[Outbound] = field(default_factory=list)
    sms: list[Sms] = field(default_factory=list)
    provision: list[int] = field(default_factory=list)  # approved registrations to make accounts for
    erased_files: list[str] = field(default_factory=list)  # uploads whose rows this turn erased: unlinked after
    # payload → template key of every button made this turn, so a typed label matches in either language
    button_keys: dict[str, str] = field(default_factory=dict)
    _deadline: date | bool | None = False  # False: not read yet

    async def deadline(self) -> date | None:
        """The registration deadline an admin set, if any; read at most once a turn, when needed."""
        if self._deadline is False:
            value = await self.repo.broadcasts.setting("deadline")
            self._deadline = date.fromisoformat(value) if value else None
        return self._deadline  # type: ignore[return-value]

    @property
    def actor(self) -> str:
        return str(self.inbound.sender)

    def t(self, key: str, /, **params: object) -> str:
        return text(key, self.conv.lang, **params)

    def button(self, key: str, payload: str) -> Choice:
        self.button_keys[payload] = key
        return Choice(self.t(key), payload)

    def labels(self, choice: Choice) -> set[str]:
        """Every label this choice is known by: as shown, and in each language."""
        key = self.button_keys.get(choice.payload)
        return {choice.label} | ({text(key, lang) for lang in LANGUAGES} if key else set())

    def say(self, key: str, /, choices: tuple[Choice, ...] | list[Choice] = (), **params: object) -> None:
        self.replies.append(Outbound(self.t(key, **params), tuple(choices)))

    def when(self, moment: datetime) -> str:
        """A moment in Thai local time, with the date only when it is not today."""
        local, today = moment.astimezone(BANGKOK), self.now.astimezone(BANGKOK)
        clock = local.strftime("%H:%M")
        if local.date() == today.date():
            return self.t("time_today", time=clock)
        month = self.t("months").split()[local.month - 1]
        year = local.year + 543 if self.conv.lang == "th" else local.year  # Buddhist Era in Thai
        return self.t("time_other_day", time=clock, day=local.day, month=month, year=year)

    async def audit(self, kind: str, detail: str = "") -> None:
        assert self.reg is not None
        await self.repo.add_audit(self.reg.id, self.now, self.actor, kind, detail)
