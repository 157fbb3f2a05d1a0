"""Configuration: read once at start-up from the environment (and `.env`), validated, passed down.

A missing or malformed setting raises `ConfigError` naming the variable; the command line
prints that one line and exits with status 2.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from handlers.messages import Address
from handlers.otp_policy import OtpPolicy
from handlers.turn import CoreSettings

CHANNELS = ("telegram", "line", "console")
SMS_PROVIDERS = ("console", "webhook", "twilio")
ENVIRONMENTS = ("development", "production")
PROVISIONERS = ("school_code", "http")
SECRET_FILE = "secret.key"
MIN_SECRET_LENGTH = 32


class ConfigError(Exception):
    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Config:
    env: str = "development"
    data_dir: Path = Path("data")
    secret_key: str = field(default="", repr=False)
    old_secret_keys: tuple[str, ...] = field(default=(), repr=False)  # still read, after a rotation
    keys_in_file: bool = False  # the keys are DATA_DIR/secret.key's (bot/data_dir.py), not the environment's
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    telegram_token: str | None = field(default=None, repr=False)
    telegram_api_url: str = "https://api.telegram.org"
    telegram_webhook_secret: str | None = field(default=None, repr=False)
    line_channel_secret: str | None = field(default=None, repr=False)
    line_access_token: str | None = field(default=None, repr=False)
    line_api_url: str = "https://api.line.me"
    line_data_api_url: str = "https://api-data.line.me"
    sms_provider: str = "console"
    sms_url: str | None = None
    sms_token: str | None = field(default=None, repr=False)
    sms_sender: str | None = None
    reviewers: frozenset[Address] = frozenset()
    admins: frozenset[Address] = frozenset()
    review_chats: tuple[Address, ...] = ()
    otp_daily_limit: int = OtpPolicy.global_day
    otp_hourly_limit: int = OtpPolicy.global_hour
    letter_link_days: int = 7
    provisioner: str = "school_code"
    provision_url: str | None = None
    provision_token: str | None = field(default=None, repr=False)
    sign_in_url: str = "https://kiddiary.in.th"
    reminder_days: tuple[int, ...] = (7, 3, 1)
    draft_retention_days: int = 90  # a registration left unfinished this long is erased

    @property
    def database_path(self) -> Path:
        return self.data_dir / "kiddiary.sqlite3"

    @property
    def telegram_enabled(self) -> bool:
        return self.telegram_token is not None

    @property
    def line_enabled(self) -> bool:
        return self.line_channel_secret is not None

    def core_settings(self) -> CoreSettings:
        return CoreSettings(
            otp=OtpPolicy(global_day=self.otp_daily_limit, global_hour=self.otp_hourly_limit), admins=self.admins,
            reviewers=self.reviewers, review_chats=self.review_chats, reminder_days=self.reminder_days,
        )


def load_config(environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Config:
    """Build the configuration from `environ` (default: the process environment) over `.env`."""
    values: dict[str, str] = {}
    if dotenv is not None and dotenv.is_file():
        values.update(read_dotenv(dotenv))
    values.update(os.environ if environ is None else environ)
    get = _Reader(values)

    env = get.choice("KIDDIARY_ENV", ENVIRONMENTS, "development")
    data_dir = Path(get.text("KIDDIARY_DATA_DIR") or "data")
    sms_provider = get.choice("KIDDIARY_SMS_PROVIDER", SMS_PROVIDERS, "console")
    if sms_provider == "console" and env == "production":
        raise ConfigError("KIDDIARY_SMS_PROVIDER", "'console' only prints codes locally; not allowed in production")

    telegram_token = get.text("KIDDIARY_TELEGRAM_TOKEN")
    if telegram_token is not None and not re.fullmatch(r"\d+:[\w-]{20,}", telegram_token):
        raise ConfigError("KIDDIARY_TELEGRAM_TOKEN", "does not look like a bot token from @BotFather (123456:ABC…)")
    line_secret = get.text("KIDDIARY_LINE_CHANNEL_SECRET")
    line_token = get.text("KIDDIARY_LINE_CHANNEL_ACCESS_TOKEN")
    if (line_secret is None) != (line_token is None):
        missing = "KIDDIARY_LINE_CHANNEL_ACCESS_TOKEN" if line_token is None else "KIDDIARY_LINE_CHANNEL_SECRET"
        raise ConfigError(missing, "LINE needs both the channel secret and the channel access token")

    provisioner = get.choice("KIDDIARY_PROVISIONER", PROVISIONERS, "school_code")
    provision_url = get.url("KIDDIARY_PROVISION_URL")
    if provisioner == "http" and provision_url is None:
        raise ConfigError("KIDDIARY_PROVISION_URL", "the http provisioner needs the URL of the account service")

    return Config(
        env=env,
        data_dir=data_dir,
        secret_key=get.text("KIDDIARY_SECRET_KEY") or "",
        old_secret_keys=tuple(k.strip() for k in (get.text("KIDDIARY_OLD_SECRET_KEYS") or "").split(",") if k.strip()),
        http_host=get.text("KIDDIARY_HTTP_HOST") or "127.0.0.1",
        http_port=get.integer("KIDDIARY_HTTP_PORT", 8080, 1, 65535),
        public_url=get.url("KIDDIARY_PUBLIC_URL") or "http://127.0.0.1:8080",
        telegram_token=telegram_token,
        telegram_api_url=get.url("KIDDIARY_TELEGRAM_API_URL") or Config.telegram_api_url,
        telegram_webhook_secret=get.text("KIDDIARY_TELEGRAM_WEBHOOK_SECRET"),
        line_channel_secret=line_secret,
        line_access_token=line_token,
        line_api_url=get.url("KIDDIARY_LINE_API_URL") or Config.line_api_url,
        line_data_api_url=get.url("KIDDIARY_LINE_DATA_API_URL") or Config.line_data_api_url,
        sms_provider=sms_provider,
        sms_url=get.url("KIDDIARY_SMS_URL"),
        sms_token=get.text("KIDDIARY_SMS_TOKEN"),
        sms_sender=get.text("KIDDIARY_SMS_SENDER"),
        reviewers=frozenset(get.addresses("KIDDIARY_REVIEWERS")),
        admins=frozenset(get.addresses("KIDDIARY_ADMINS")),
        review_chats=tuple(get.addresses("KIDDIARY_REVIEW_CHATS")),
        otp_daily_limit=get.integer("KIDDIARY_OTP_DAILY_LIMIT", OtpPolicy.global_day, 1, 10_000_000),
        otp_hourly_limit=get.integer("KIDDIARY_OTP_HOURLY_LIMIT", OtpPolicy.global_hour, 1, 10_000_000),
        letter_link_days=get.integer("KIDDIARY_LETTER_LINK_DAYS", 7, 1, 90),
        provisioner=provisioner,
        provision_url=provision_url,
        provision_token=get.text("KIDDIARY_PROVISION_TOKEN"),
        sign_in_url=get.url("KIDDIARY_SIGN_IN_URL") or Config.sign_in_url,
        reminder_days=get.days("KIDDIARY_REMINDER_DAYS", Config.reminder_days),
        # Within the notice's year: a draft is never kept longer than an issued account's data.
        draft_retention_days=get.integer("KIDDIARY_DRAFT_RETENTION_DAYS", Config.draft_retention_days, 1, 365),
    )


def read_dotenv(path: Path) -> dict[str, str]:
    """The settings of a `.env` file. python-dotenv skips a line it cannot parse with a warning;
    here such a line stops start-up: a skipped KIDDIARY_SECRET_KEY would otherwise start the bot
    without its key."""
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise ConfigError(str(path), f"line {line} is not UTF-8 text; save the file as UTF-8") from None
    except OSError as e:
        raise ConfigError(str(path), f"cannot be read: {e.strerror or e}") from None
    for binding in parse_stream(io.StringIO(content)):
        if binding.error:  # its text is not quoted back: it may hold a secret
            name = re.match(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=", binding.original.string)
            which = f" ({name.group(1)})" if name else ""
            raise ConfigError(str(path), f"line {binding.original.line}{which} cannot be read as NAME=value "
                              "(an unclosed quote?); nothing was started")
    return {k: v for k, v in dotenv_values(stream=io.StringIO(content)).items() if v is not None}


class _Reader:
    """Typed reads of the raw values; empty counts as unset."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values

    def text(self, name: str) -> str | None:
        value = self._values.get(name, "").strip()
        return value or None

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = (self.text(name) or default).lower()
        if value not in allowed:
            raise ConfigError(name, f"must be one of {', '.join(allowed)}, not {value!r}")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise ConfigError(name, f"must be a whole number from {low} to {high}, not {raw!r}")
        return int(raw)

    def days(self, name: str, default: tuple[int, ...]) -> tuple[int, ...]:
        """Whole numbers of days, comma-separated ("7,3,1"); "none" for no reminders."""
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() == "none":
            return ()
        items = [item.strip() for item in raw.split(",") if item.strip()]
        if not items or not all(item.isdigit() and 0 <= int(item) <= 90 for item in items):
            raise ConfigError(name, f"must be days before the deadline, such as 7,3,1 (0 to 90), not {raw!r}")
        return tuple(sorted({int(item) for item in items}, reverse=True))

    def url(self, name: str) -> str | None:
        raw = self.text(name)
        if raw is None:
            return None
        parsed = urlparse(raw)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(name, f"must be an http(s) URL, not {raw!r}")
        return raw.rstrip("/")  # line-bot-sdk and our links join paths themselves

    def addresses(self, name: str) -> list[Address]:
        raw = self.text(name)
        found = []
        for item in (raw or "").split(","):
            if not item.strip():
                continue
            try:
                address = Address.parse(item)
            except ValueError:
                raise ConfigError(name, f"expected channel:user_id items, got {item.strip()!r}") from None
            if address.channel not in CHANNELS:
                raise ConfigError(name, f"unknown channel {address.channel!r} (use {', '.join(CHANNELS)})")
            found.append(address)
        return found
