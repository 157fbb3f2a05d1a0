"""The privacy promises over the real SDKs and the real web app: an erased scan leaves no file,
no row and no working link; /show with its photo only where reviewers are meant to see it."""

from __future__ import annotations

import time
from pathlib import Path

from handlers.messages import Address
from templates import text as t
from tests import test_line
from tests.test_review_channels import (
    LINE_GROUP,
    TELEGRAM_GROUP,
    TELEGRAM_REVIEWER,
    Both,
    both,  # noqa: F401 - the fixture
    submitted_on_line,
)


async def test_erasure_leaves_no_scan_file_row_or_working_link(both: Both, tmp_path: Path):  # noqa: F811
    officer, ref = await submitted_on_line(both)
    [card] = [r for r in both.line.fake.sent("/v2/bot/message/push") if r.body["to"] == LINE_GROUP]
    image = next(m for m in card.body["messages"] if m["type"] == "image")
    links = [image["originalContentUrl"], image["previewImageUrl"]]
    assert all("/signed/" in link for link in links)
    for link in links:
        status, jpeg, _ = await both.line.get(link)
        assert status == 200 and jpeg[:3] == b"\xff\xd8\xff"
    scans = list((tmp_path / "uploads").glob("*/*.bin"))
    assert len(scans) == 1

    messages = await officer.say("/delete_my_data")
    assert [a["data"] for a in test_line.quick(messages)] == ["privacy:erase", "privacy:keep"]
    messages = await officer.press("privacy:erase")
    assert t("privacy_deleted", "th", count=1, letters=1, kept=t("privacy_nothing_kept", "th")) in \
        test_line.texts(messages)

    assert list((tmp_path / "uploads").glob("*/*")) == [] and not scans[0].exists()
    for link in links:
        status, body, _ = await both.line.get(link)
        assert status == 404 and body[:3] != b"\xff\xd8\xff"
    repo = both.line.app.repo
    async with repo.transaction():
        reg = await repo.get_registration_by_ref(ref)
        assert await repo.signed_letters_of(reg.id) == []
        phones = [r[0] for r in await repo._all("SELECT phone_index FROM otp_challenges")]
        trail = await repo.audit_trail(reg.id)
    assert phones and all(p.startswith("erased:") for p in phones)
    assert (reg.status, reg.national_id, reg.phone, reg.officer_first_name) == ("cancelled", None, None, None)
    assert "1 signed letter(s), 1 file(s)" in trail[-1].detail and trail[-1].actor == f"line:{officer.id}"


async def test_show_in_another_telegram_group_is_refused_and_works_in_the_review_group(both: Both):  # noqa: F811
    _, ref = await submitted_on_line(both)
    reviewer = {"id": TELEGRAM_REVIEWER, "is_bot": False, "first_name": "ผู้ตรวจ", "language_code": "th"}

    async def show_in(chat_id: int) -> list:
        group = {"id": chat_id, "type": "supergroup", "title": "กลุ่ม"}
        before = len(both.telegram.fake.sent())
        await both.telegram.deliver({"update_id": both.telegram.fake.next_update_id(), "message": {
            "message_id": 77, "date": int(time.time()), "chat": group, "from": reviewer, "text": f"/show {ref}"}})
        await both.telegram.settle()
        return [c for c in both.telegram.fake.sent()[before:] if int(c.params["chat_id"]) == chat_id]

    elsewhere = await show_in(-100555)
    assert [c.method for c in elsewhere] == ["sendMessage"]
    assert elsewhere[0].params["text"] == t("review_show_not_here", "th")
    in_review = await show_in(TELEGRAM_GROUP)
    assert [c.method for c in in_review] == ["sendPhoto"] and ref in in_review[0].params["caption"]
    async with both.line.app.repo.transaction():
        [view] = await both.line.app.repo.audit_log.entries("data_viewed")
    assert view.detail == {"what": "/show", "chat": str(Address("telegram", str(TELEGRAM_GROUP))), "refs": [ref]}
