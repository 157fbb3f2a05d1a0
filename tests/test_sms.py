"""The SMS gateways over real HTTP against a fake gateway: body, auth, retries, final failure."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from bot.config import ConfigError, load_config
from bot.sms import TwilioGateway, WebhookGateway, make_gateway
from handlers.sms_gateway import SmsError, SmsOutcomeUnknown
from tests.fakes.http_service import HANG, FakeService
from tests.helpers import Officer


@pytest.fixture
async def service() -> AsyncIterator[FakeService]:
    fake = FakeService({"sid": "SM1"})
    await fake.start()
    yield fake
    await fake.stop()


def fast(gateway):
    gateway.backoff = 0.01
    return gateway


async def test_webhook_gateway_posts_json_with_a_bearer_token(service: FakeService):
    await fast(WebhookGateway(f"{service.url}/sms", "s3cret")).send("+66812345678", "รหัส 123456")
    [sent] = service.received
    assert sent.json == {"to": "+66812345678", "text": "รหัส 123456"}
    assert sent.headers["Authorization"] == "Bearer s3cret"


@pytest.mark.parametrize("status", [503, 429])
async def test_a_passing_failure_is_retried(service: FakeService, status):
    service.fail(status)
    await fast(WebhookGateway(f"{service.url}/sms", None)).send("+66812345678", "x")
    assert len(service.received) == 2


async def test_the_last_failure_is_raised_after_bounded_retries(service: FakeService):
    service.fail(503, 503, 503, 503)
    with pytest.raises(SmsError, match="HTTP 503"):
        await fast(WebhookGateway(f"{service.url}/sms", None)).send("+66812345678", "x")
    assert len(service.received) == 3


@pytest.mark.parametrize("status", [500, 502, 504, HANG])
async def test_an_sms_that_may_have_gone_out_is_not_sent_again(service: FakeService, status):
    """A timeout or an ambiguous 5xx: the gateway may have sent it. Resending would pay (and
    text the officer) twice on a gateway that ignores the key: the outcome is reported unknown."""
    service.fail(status)
    gateway = fast(WebhookGateway(f"{service.url}/sms", None))
    gateway.timeout = aiohttp.ClientTimeout(total=0.3)
    with pytest.raises(SmsOutcomeUnknown):
        await gateway.send("+66812345678", "x", key="row-key-1")
    assert len(service.received) == 1
    assert service.received[0].headers["Idempotency-Key"] == "row-key-1"


async def test_a_refusal_is_not_retried(service: FakeService):
    service.fail(400)
    with pytest.raises(SmsError, match="HTTP 400"):
        await fast(WebhookGateway(f"{service.url}/sms", None)).send("+66812345678", "x")
    assert len(service.received) == 1


async def test_an_unreachable_gateway_fails_cleanly():
    with pytest.raises(SmsError):
        await fast(WebhookGateway("http://127.0.0.1:9/sms", None)).send("+66812345678", "x")


async def test_twilio_gateway_uses_the_messages_api(service: FakeService):
    await fast(TwilioGateway(service.url, "AC123:authtoken", "KidDiary")).send("+66812345678", "สวัสดี")
    [sent] = service.received
    assert sent.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert sent.form == {"To": "+66812345678", "From": "KidDiary", "Body": "สวัสดี"}
    assert sent.headers["Authorization"].startswith("Basic ")


async def test_twilio_retries_too(service: FakeService):
    service.fail(503)
    await fast(TwilioGateway(service.url, "AC123:authtoken", "KidDiary")).send("+66812345678", "x")
    assert len(service.received) == 2


def test_gateway_configuration_is_checked():
    assert isinstance(make_gateway(load_config({"KIDDIARY_SMS_PROVIDER": "webhook", "KIDDIARY_SMS_URL":
                                                "https://sms.example/send"}, dotenv=None)), WebhookGateway)
    for env, variable in (
        ({"KIDDIARY_SMS_PROVIDER": "webhook"}, "KIDDIARY_SMS_URL"),
        ({"KIDDIARY_SMS_PROVIDER": "twilio", "KIDDIARY_SMS_TOKEN": "nocolon"}, "KIDDIARY_SMS_TOKEN"),
        ({"KIDDIARY_SMS_PROVIDER": "twilio", "KIDDIARY_SMS_TOKEN": "AC:x"}, "KIDDIARY_SMS_SENDER"),
    ):
        with pytest.raises(ConfigError) as error:
            make_gateway(load_config(env, dotenv=None))
        assert error.value.variable == variable


async def test_a_final_failure_is_logged_with_the_phone_masked(dispatcher, service: FakeService, caplog):
    service.fail(503, 503, 503)
    dispatcher.sms = fast(WebhookGateway(f"{service.url}/sms", None))
    officer = Officer(dispatcher, None)  # type: ignore[arg-type]
    caplog.set_level(logging.INFO)
    await officer.up_to("phone")
    await officer.say("081-234-5678")
    assert officer.said("sms_failed")
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("08x-xxx-5678" in line and "HTTP 503" in line for line in lines)
    assert not any("0812345678" in r.getMessage() or "+66812345678" in r.getMessage() for r in caplog.records)


async def test_every_try_of_one_sms_carries_the_same_idempotency_key(service: FakeService):
    service.fail(503)
    await fast(WebhookGateway(f"{service.url}/sms", None)).send("+66812345678", "x", key="row-key-1")
    assert [r.headers["Idempotency-Key"] for r in service.received] == ["row-key-1", "row-key-1"]


async def test_a_gateway_timeout_counts_against_the_limits_and_is_not_resent(dispatcher, service: FakeService, clock):
    """Six tries in 30 s against a gateway that times out: one request reaches it (not 18), the
    code counts (the cooldown and the daily total see it), the officer is told it may still
    come, and the code, if it does come, works."""
    service.fail(HANG)
    gateway = fast(WebhookGateway(f"{service.url}/sms", None))
    gateway.timeout = aiohttp.ClientTimeout(total=0.3)
    dispatcher.sms = gateway
    officer = Officer(dispatcher, None)  # type: ignore[arg-type]
    await officer.up_to("phone")
    await officer.say("081-234-5678")
    assert officer.said("sms_unknown", seconds=60)
    for _ in range(5):
        clock.advance(seconds=5)
        await officer.press("otp:resend")
        assert officer.said("err_otp_cooldown", seconds=60 - 5 * (_ + 1))
    assert len(service.received) == 1
    async with dispatcher.repo.transaction():
        total, _ = await dispatcher.repo.otp.sent_total(since=clock() - timedelta(days=1))
    assert total == 1
    code = re.search(r"\b(\d{6})\b", service.received[0].json["text"]).group(1)
    await officer.say(code)
    async with dispatcher.repo.transaction():
        [reg] = await dispatcher.repo.registrations_of(officer.channel, officer.user_id)
    assert reg.phone == "+66812345678" and reg.phone_verified_at is not None

