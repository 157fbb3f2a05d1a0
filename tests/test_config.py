"""Configuration read from a mapping, as the process environment would give it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from bot.data_dir import with_keys
from handlers.messages import Address


def test_defaults_need_nothing_configured():
    config = load_config({}, dotenv=None)
    assert config.data_dir == Path("data") and config.http_port == 8080 and config.sms_provider == "console"
    assert not config.telegram_enabled and not config.line_enabled
    assert config.public_url == "http://127.0.0.1:8080"


def test_lists_of_addresses_and_urls_are_tidied():
    config = load_config({
        "KIDDIARY_REVIEWERS": "telegram:42, line:Uabc ,",
        "KIDDIARY_REVIEW_CHATS": "telegram:-100123",
        "KIDDIARY_LINE_API_URL": "http://127.0.0.1:9000/",
    }, dotenv=None)
    assert config.reviewers == {Address("telegram", "42"), Address("line", "Uabc")}
    assert config.review_chats == (Address("telegram", "-100123"),)
    assert config.line_api_url == "http://127.0.0.1:9000"  # no trailing slash for line-bot-sdk


def test_environment_wins_over_dotenv(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("KIDDIARY_HTTP_PORT=9000\nKIDDIARY_HTTP_HOST=0.0.0.0\n")
    config = load_config({"KIDDIARY_HTTP_PORT": "9100"}, dotenv=dotenv)
    assert (config.http_host, config.http_port) == ("0.0.0.0", 9100)


def test_the_otp_daily_cap_reaches_the_core():
    config = load_config({"KIDDIARY_OTP_DAILY_LIMIT": "500"}, dotenv=None)
    assert config.core_settings().otp.global_day == 500


def test_console_sms_refused_in_production():
    with pytest.raises(ConfigError) as error:
        load_config({"KIDDIARY_ENV": "production"}, dotenv=None)
    assert error.value.variable == "KIDDIARY_SMS_PROVIDER"


def test_a_configured_secret_key_is_used_and_checked(tmp_path):
    config = load_config({"KIDDIARY_DATA_DIR": str(tmp_path), "KIDDIARY_SECRET_KEY": "k" * 40}, dotenv=None)
    assert with_keys(config).secret_key == "k" * 40
    assert not (tmp_path / "secret.key").exists()
    with pytest.raises(ConfigError):
        with_keys(load_config({"KIDDIARY_SECRET_KEY": "k" * 10}, dotenv=None))
    with pytest.raises(ConfigError) as error:
        with_keys(load_config({"KIDDIARY_SECRET_KEY": "k" * 40, "KIDDIARY_OLD_SECRET_KEYS": "o" * 40 + ",short"},
                              dotenv=None))
    assert error.value.variable == "KIDDIARY_OLD_SECRET_KEYS"


def test_an_unparseable_dotenv_line_is_fatal_and_its_text_not_repeated(tmp_path):
    """python-dotenv skips such a line with a warning: a skipped KIDDIARY_SECRET_KEY would have
    started the bot without its key."""
    dotenv = tmp_path / ".env"
    dotenv.write_text('KIDDIARY_HTTP_PORT=9000\nKIDDIARY_SECRET_KEY="s3cret-s3cret-s3cret-s3cret-s3cret\n')
    with pytest.raises(ConfigError) as error:
        load_config({}, dotenv=dotenv)
    assert "line 2 (KIDDIARY_SECRET_KEY)" in str(error.value) and "s3cret" not in str(error.value)
    dotenv.write_text("KIDDIARY_HTTP_PORT=9000\nnot a setting at all\n")
    with pytest.raises(ConfigError, match="line 2 cannot be read"):
        load_config({}, dotenv=dotenv)


def test_a_dotenv_that_is_not_utf8_is_named(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_bytes("KIDDIARY_HTTP_PORT=9000\nKIDDIARY_SIGN_IN_URL=https://ตัวอย่าง.th\n".encode("cp874"))
    with pytest.raises(ConfigError, match="line 2 is not UTF-8"):
        load_config({}, dotenv=dotenv)
