"""Review across channels, over the real SDKs: an officer on one platform, reviewers on the other."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from linebot.v3.messaging import FlexMessage

from bot import web
from bot.app import open_app
from bot.config import load_config
from bot.line import LineChannel
from bot.telegram import TelegramChannel
from templates import letter
from templates import text as t
from tests import test_line, test_telegram
from tests.fakes.line_api import ACCESS_TOKEN, CHANNEL_SECRET, FakeLine
from tests.fakes.sms import RecordingSmsGateway
from tests.fakes.telegram_api import FakeTelegram
from tests.helpers import Clock, ManualTimer
from tests.test_signed_letter import phone_photo

TELEGRAM_GROUP = -100777
LINE_GROUP = "Cgroup0000000001"
TELEGRAM_REVIEWER = 6660001
LINE_REVIEWER = "Ureviewer000001"


@dataclass
class Both:
    telegram: test_telegram.Harness
    line: test_line.Harness
    sms: RecordingSmsGateway


@asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[Both]:
    tg_fake, line_fake = FakeTelegram(test_telegram.TOKEN), FakeLine()
    tg_url, line_url = await tg_fake.start(), await line_fake.start()
    config = load_config({
        "KIDDIARY_DATA_DIR": str(tmp_path),
        "KIDDIARY_TELEGRAM_TOKEN": test_telegram.TOKEN, "KIDDIARY_TELEGRAM_API_URL": tg_url,
        "KIDDIARY_TELEGRAM_WEBHOOK_SECRET": test_telegram.SECRET,
        "KIDDIARY_LINE_CHANNEL_SECRET": CHANNEL_SECRET, "KIDDIARY_LINE_CHANNEL_ACCESS_TOKEN": ACCESS_TOKEN,
        "KIDDIARY_LINE_API_URL": line_url, "KIDDIARY_LINE_DATA_API_URL": line_url,
        "KIDDIARY_REVIEWERS": f"telegram:{TELEGRAM_REVIEWER},line:{LINE_REVIEWER}",
        "KIDDIARY_REVIEW_CHATS": f"telegram:{TELEGRAM_GROUP},line:{LINE_GROUP}",
    }, dotenv=None)
    sms, clock = RecordingSmsGateway(), Clock()
    clock.now = clock.now.fromtimestamp(time.time(), clock.now.tzinfo)
    timer = ManualTimer(time.time())
    async with open_app(config, sms, timer=timer) as app:
        await asyncio.to_thread(letter.prepare)
        telegram = TelegramChannel(app.config, app.dispatcher, app.letters, poll_timeout=1)
        telegram.policy = test_telegram.UNPACED
        line = LineChannel(app.config, app.dispatcher, app.repo, app.links, clock=clock)
        app.letters.clock = clock
        runner = await web.serve(web.make_app(telegram, line, app.letters), "127.0.0.1", 0)
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        line.public_url = url
        for channel in (telegram, line):
            app.delivery.add_sender(channel)
            await channel.start()
        await app.delivery.start()
        try:
            yield Both(test_telegram.Harness(tg_fake, telegram, app, sms, "webhook", url),
                       test_line.Harness(line_fake, line, app, sms, url, clock, timer), sms)
        finally:
            await app.delivery.stop()
            await telegram.stop()
            await line.stop()
            await runner.cleanup()
            await tg_fake.stop()
            await line_fake.stop()


@pytest.fixture
async def both(tmp_path) -> AsyncIterator[Both]:
    async with running(tmp_path) as harness:
        yield harness


async def ref_of(both: Both) -> str:
    async with both.line.app.repo.transaction():
        regs = await both.line.app.repo.submitted(0, 10)
    return regs[0][0].ref


async def submitted_on_line(both: Both) -> tuple[test_line.User, str]:
    """A LINE officer who has sent the signed letter; and the reference."""
    officer = test_line.User(both.line)
    messages = await test_line.register_until_letter(officer)
    template = next(m for m in messages if m["type"] == "template")
    _, pdf, _ = await both.line.get(template["template"]["actions"][0]["uri"])
    await officer.image(phone_photo(pdf))
    return officer, await ref_of(both)


async def test_a_line_officer_is_approved_by_a_reviewer_in_a_telegram_group(both: Both):
    officer, ref = await submitted_on_line(both)

    # The Telegram review group got the card, as a photo with the two buttons.
    [card] = [c for c in both.telegram.fake.sent("sendPhoto") if int(c.params["chat_id"]) == TELEGRAM_GROUP]
    assert ref in card.params["caption"] and "1-2345-xxxxx-xx-1" in card.params["caption"]
    assert card.files["photo"][:3] == b"\xff\xd8\xff"
    assert [b.rsplit(":", 1)[0] for b in test_telegram.buttons(card)] == [f"review:approve:{ref}",
                                                                          f"review:reject:{ref}"]
    # …and so did the LINE review group: the photo as an image, the card as a Flex Message with
    # the two buttons in it and the plain card as its altText.
    pushes = [r for r in both.line.fake.sent("/v2/bot/message/push") if r.body["to"] == LINE_GROUP]
    kinds = [m["type"] for r in pushes for m in r.body["messages"]]
    assert kinds == ["image", "flex"]
    line_card = pushes[0].body["messages"][1]
    FlexMessage.from_dict(line_card)  # as LINE takes it, by line-bot-sdk's models
    assert ref in line_card["altText"] and "1-2345-xxxxx-xx-1" in test_line.flex_texts(line_card)
    assert [data.rsplit(":", 1)[0] for data in test_line.flex_buttons(line_card)] == [
        f"review:approve:{ref}", f"review:reject:{ref}"]
    image_url = pushes[0].body["messages"][0]["originalContentUrl"]
    status, jpeg, _ = await both.line.get(image_url)
    assert status == 200 and jpeg[:3] == b"\xff\xd8\xff"

    # A reviewer presses Approve in the Telegram group.
    reviewer = {"id": TELEGRAM_REVIEWER, "is_bot": False, "first_name": "ผู้ตรวจ", "language_code": "th"}
    group = {"id": TELEGRAM_GROUP, "type": "supergroup", "title": "ตรวจสอบ KidDiary"}
    approve = test_telegram.buttons(card)[0]
    press = {"id": "cq-approve", "from": reviewer, "chat_instance": "g", "data": approve, "message": {
        "message_id": 5, "date": int(time.time()), "chat": group, "caption": "card",
        "reply_markup": card.params["reply_markup"]}}
    # Someone who is not a reviewer presses first: refused, and the buttons stay for the reviewers.
    stranger = {"id": 4040404, "is_bot": False, "first_name": "ครูอื่น"}
    await both.telegram.deliver({"update_id": both.telegram.fake.next_update_id(),
                                 "callback_query": {**press, "id": "cq-x", "from": stranger}})
    await both.line.settle()
    assert t("review_not_reviewer", "th") in texts_to(both, TELEGRAM_GROUP)
    assert both.telegram.fake.sent("editMessageReplyMarkup") == []
    await both.telegram.deliver({"update_id": both.telegram.fake.next_update_id(), "callback_query": press})
    await both.line.settle()
    to_group = [c.params.get("text", "") for c in both.telegram.fake.sent("sendMessage")
                if int(c.params["chat_id"]) == TELEGRAM_GROUP]
    assert any(t("review_provisioned", "th", ref=ref, username="sch1054530001") in x for x in to_group)
    # The officer hears it on LINE (by push: nobody wrote from that chat) and by SMS.
    told = [m["text"] for r in both.line.fake.sent("/v2/bot/message/push") if r.body["to"] == officer.id
            for m in r.body["messages"]]
    assert any("sch1054530001" in x for x in told)
    assert "sch1054530001" in both.sms.sent[-1][1]


def texts_to(both: Both, chat_id: int) -> str:
    return "\n".join(str(c.params.get("text") or c.params.get("caption") or "") for c in both.telegram.fake.sent()
                     if int(c.params["chat_id"]) == chat_id)


async def test_a_telegram_officer_is_rejected_by_a_reviewer_in_a_line_group(both: Both):
    officer = test_telegram.User(both.telegram)
    document = await test_telegram.register_until_letter(officer, share_contact=False)
    await officer.photo(phone_photo(document.files["document"]))
    ref = await ref_of(both)

    line_reviewer = test_line.User(both.line, user_id=LINE_REVIEWER)
    group = {"type": "group", "groupId": LINE_GROUP, "userId": LINE_REVIEWER}
    await line_reviewer.send(line_reviewer.event("postback", source=group, postback={"data": f"review:reject:{ref}"}))
    await line_reviewer.send(line_reviewer.event("postback", source=group,
                                                 postback={"data": f"review:reason:{ref}:unreadable"}))
    await both.telegram.settle()
    told = texts_to(both, officer.id)
    assert t("officer_rejected", "th", ref=ref, reason=t("reason_unreadable", "th")).splitlines()[0] in told
    async with both.line.app.repo.transaction():
        reg = await both.line.app.repo.get_registration_by_ref(ref)
    assert reg.status == "rejected" and reg.decided_by == f"line:{LINE_REVIEWER}"


async def test_an_officer_pressing_a_review_button_in_the_group_is_refused(both: Both):
    _, ref = await submitted_on_line(both)
    intruder = test_line.User(both.line, user_id="Uintruder00001")
    group = {"type": "group", "groupId": LINE_GROUP, "userId": intruder.id}
    messages = await intruder.send(intruder.event("postback", source=group, postback={"data": f"review:approve:{ref}"}))
    assert t("review_not_reviewer", "th") in test_line.texts(messages)
    async with both.line.app.repo.transaction():
        assert (await both.line.app.repo.get_registration_by_ref(ref)).status == "submitted"


async def test_a_newer_photo_replaces_the_card_and_a_decision_closes_it(both: Both):
    officer, ref = await submitted_on_line(both)
    [card] = [c for c in both.telegram.fake.sent("sendPhoto") if int(c.params["chat_id"]) == TELEGRAM_GROUP]
    line_cards = [r for r in both.line.fake.sent("/v2/bot/message/push") if r.body["to"] == LINE_GROUP]
    assert len(line_cards) == 1

    # The officer sends a better photo: the Telegram card is edited in place, with the new photo
    # and buttons for it; LINE, which cannot edit, holds the new card back a few minutes.
    template = next(m for m in both.line.fake.messages() if m["type"] == "template")
    _, pdf, _ = await both.line.get(template["template"]["actions"][0]["uri"])
    await officer.image(phone_photo(pdf, angle=-4))
    await both.line.settle()
    [edit] = both.telegram.fake.sent("editMessageMedia")
    assert int(edit.params["chat_id"]) == TELEGRAM_GROUP and int(edit.params["message_id"]) == card_id(both, card)
    assert len([c for c in both.telegram.fake.sent("sendPhoto") if int(c.params["chat_id"]) == TELEGRAM_GROUP]) == 1
    new_buttons = [b["callback_data"] for row in edit.params["reply_markup"]["inline_keyboard"] for b in row]
    assert new_buttons != test_telegram.buttons(card) and new_buttons[0].startswith(f"review:approve:{ref}:")
    assert len([r for r in both.line.fake.sent("/v2/bot/message/push") if r.body["to"] == LINE_GROUP]) == 1
    await both.line.later(5 * 60 + 1)
    line_cards = [r for r in both.line.fake.sent("/v2/bot/message/push") if r.body["to"] == LINE_GROUP]
    assert len(line_cards) == 2  # one new card after the interval, with the newest photo

    # A reviewer on LINE approves: the Telegram card loses its buttons and says who decided.
    line_reviewer = test_line.User(both.line, user_id=LINE_REVIEWER)
    group = {"type": "group", "groupId": LINE_GROUP, "userId": LINE_REVIEWER}
    await line_reviewer.send(line_reviewer.event("postback", source=group,
                                                 postback={"data": new_buttons[0]}))
    await both.line.settle()
    [closed] = both.telegram.fake.sent("editMessageCaption")
    assert int(closed.params["message_id"]) == card_id(both, card)
    assert "reply_markup" not in closed.params  # an edit without a keyboard removes it
    assert LINE_REVIEWER in closed.params["caption"] and t("status_name_approved", "th") in closed.params["caption"]


def card_id(both: Both, card) -> int:
    """The message id the fake gave the card when it was sent."""
    return card.result["message_id"]
