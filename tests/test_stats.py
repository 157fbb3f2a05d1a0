"""/stats, /stats chart and `kiddiary-bot stats` against registrations made through the real core."""

from __future__ import annotations

import asyncio
import io
import statistics
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
from PIL import Image

from handlers import stats as admin_stats
from handlers.dispatch import Dispatcher
from handlers.messages import Address
from handlers.turn import BANGKOK
from handlers.validation import thai_mobile
from storage import School
from templates import text as t
from templates.chart import figure
from tests.helpers import ANSWERS, Officer
from tests.test_review import stored
from tests.test_signed_letter import letter_pdf, send, without_qr

ADMIN = Address("test", "boss")
REVIEWER = Address("test", "rev1")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def admin_settings(dispatcher: Dispatcher, settings) -> Dispatcher:
    dispatcher.settings = replace(settings, admins=frozenset({ADMIN}), reviewers=frozenset({REVIEWER}))
    return dispatcher


async def register(dispatcher: Dispatcher, sms, n: int, code: str, submit: bool = True) -> str:
    """Officer n registers school `code` (the steps typed, as without a directory) up to the letter,
    and sends it back signed when `submit`; the reference."""
    officer = Officer(dispatcher, sms, user_id=f"officer-{n}", phone=f"081{n:07d}")
    await officer.up_to("school_code")
    await officer.say(code)
    for name in ("school_name", "province", "old_tsl", "old_kiddiary", "officer_name", "national_id"):
        await officer.say(ANSWERS[name])
    await officer.say(officer.phone)
    phone = thai_mobile(officer.phone)
    while not any(to == phone for to, _ in sms.sent):
        await asyncio.sleep(0.02)
    await officer.say(sms.last_code(phone))
    await officer.press("confirm")
    if submit:
        await send(officer, without_qr(letter_pdf(officer)))
    async with dispatcher.repo.transaction():
        return (await dispatcher.repo.registrations_of(officer.channel, officer.user_id))[-1].ref


def code(n: int) -> str:
    return f"10{n:08d}"


async def test_stats_for_admins_only_and_bad_arguments_explained(admin_settings, sms):
    officer = Officer(admin_settings, sms)
    await officer.up_to("affiliation")
    for words in ("/stats", "/stats chart"):
        await officer.say(words)
        assert officer.said("not_allowed") and all(r.document is None for r in officer.replies)
    boss = Officer(admin_settings, sms, user_id="boss")
    await boss.say("/stats pie")
    assert boss.said("stats_usage") and len(boss.replies) == 1
    async with admin_settings.repo.transaction():
        assert await admin_settings.repo.reviewers() == []
        assert await admin_settings.repo.stats.directory_size() == 0


async def test_stats_show_status_affiliation_today_median_queue(admin_settings, sms, clock):
    dispatcher = admin_settings
    expected: Counter[str] = Counter()
    start = clock.now
    clock.now = start - timedelta(days=1)  # yesterday: submitted, decided today
    early = await register(dispatcher, sms, 1, code(1))
    submitted_at = {early: clock.now}
    clock.now = start
    refs = [await register(dispatcher, sms, n, code(n)) for n in (2, 3, 4)]
    for ref in refs:
        submitted_at[ref] = (await stored(dispatcher, ref)).submitted_at
    await register(dispatcher, sms, 5, code(5), submit=False)
    expected["letter_issued"] += 1
    reviewer = Officer(dispatcher, sms, user_id="rev1")
    waits = []
    for ref, approve, after in ((early, True, 90), (refs[0], False, 30), (refs[1], True, 200)):
        clock.advance(minutes=after)
        await reviewer.say(f"/approve {ref}" if approve else f"/reject {ref} unreadable")
        waits.append(clock.now - submitted_at[ref])
        expected["approved" if approve else "rejected"] += 1
    expected["submitted"] += 1  # refs[2]: still waiting

    boss = Officer(dispatcher, sms, user_id="boss")
    await boss.say("/stats")
    lang = "th"
    lines = "\n".join(f"• {t(f'status_name_{s}', lang)}: {expected[s]}"
                      for s in ("letter_issued", "submitted", "approved", "rejected"))
    assert boss.said("stats", lines=lines, total=sum(expected.values()))
    obec = t("affiliation_obec", lang)
    assert boss.said("stats_affiliation_line", affiliation=obec, registrations=sum(expected.values()),
                     registered=expected["submitted"] + expected["approved"], approved=expected["approved"])
    assert boss.said("stats_today", submitted=len(refs), decided=len(waits))
    median = admin_stats.duration(statistics.median(waits), lang)
    assert boss.said("stats_median_wait", wait=median)
    assert boss.said("stats_queue", count=expected["submitted"])
    assert boss.said("stats_no_directory") and boss.said("stats_chart_hint")
    assert not boss.said("stats_accounts_not_made", count=0)

    # Tomorrow (Bangkok), nothing happened yet; the days end at midnight in Thailand, not UTC.
    clock.now = (start.astimezone(BANGKOK) + timedelta(days=1)).replace(hour=0, minute=1)
    await boss.say("/stats")
    assert boss.said("stats_today", submitted=0, decided=0)


async def test_top_and_bottom_provinces_with_a_loaded_directory(admin_settings, sms):
    dispatcher = admin_settings
    provinces = ["แพร่", "น่าน", "ลำปาง", "ลำพูน", "เชียงใหม่", "เชียงราย", "พะเยา", "ตาก", "สุโขทัย", "อุตรดิตถ์",
                 "พิษณุโลก", "เพชรบูรณ์"]
    schools, n = [], 0
    for i, province in enumerate(provinces):
        for _ in range(i + 2):  # i + 2 schools in the i-th province
            n += 1
            schools.append(School(code(n), f"โรงเรียนที่ {n}", province, "obec"))
    # One school registered in each of the first five provinces, two in the sixth; one more
    # only got its letter (does not count).
    chosen = [next(s for s in schools if s.province == p) for p in provinces[:6]]
    chosen.append([s for s in schools if s.province == provinces[5]][1])
    for k, school in enumerate(chosen, 1):
        await register(dispatcher, sms, k, school.code)
    await register(dispatcher, sms, 99, next(s for s in schools if s.province == provinces[7]).code, submit=False)
    async with dispatcher.repo.transaction():
        await dispatcher.repo.import_schools(schools)

    boss = Officer(dispatcher, sms, user_id="boss")
    await boss.say("/stats")
    registered = Counter(s.province for s in chosen)
    share = {p: registered[p] / sum(1 for s in schools if s.province == p) for p in provinces}
    order = sorted(provinces, key=lambda p: (-share[p], -sum(s.province == p for s in schools), p))
    assert boss.said("stats_provinces_heading", registered=len(chosen), schools=len(schools),
                     share=admin_stats.percent(len(chosen) / len(schools)))
    top, bottom = order[:10], list(reversed(order[10:]))
    shown = boss.text
    assert boss.said("stats_provinces_top", count=10) and boss.said("stats_provinces_bottom", count=len(bottom))
    for group, rank in ((top, shown.index(t("stats_provinces_top", "th", count=10))),
                        (bottom, shown.index(t("stats_provinces_bottom", "th", count=len(bottom))))):
        for i, p in enumerate(group, 1):
            line = t("stats_province_line", "th", n=i, province=p, registered=registered[p],
                     schools=sum(s.province == p for s in schools), share=admin_stats.percent(share[p]))
            assert line in shown[rank:], line


async def test_the_chart_is_a_png_of_the_registrations_and_progress(admin_settings, sms, clock):
    dispatcher = admin_settings
    start = clock.now
    made = []  # (day in Bangkok, status now)
    clock.now = start - timedelta(days=2)
    await register(dispatcher, sms, 1, code(1))
    made.append((clock.now.astimezone(BANGKOK).date(), "submitted"))
    clock.now = start
    await register(dispatcher, sms, 2, code(2))
    await register(dispatcher, sms, 3, code(3), submit=False)
    made += [(start.astimezone(BANGKOK).date(), "submitted"), (start.astimezone(BANGKOK).date(), "letter_issued")]
    async with dispatcher.repo.transaction():
        await dispatcher.repo.import_schools([School(code(n), f"โรงเรียน {n}", "แพร่", "obec") for n in range(1, 6)])

    boss = Officer(dispatcher, sms, user_id="boss")
    await boss.say("/stats chart")
    [message] = boss.replies
    png = message.document.data  # rendered when it was sent
    assert png.startswith(PNG_SIGNATURE) and message.document.mime_type == "image/png"
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG" and image.width > 600

    today = start.astimezone(BANGKOK).date()
    async with dispatcher.repo.transaction():
        series = await dispatcher.repo.stats.daily()
    deadline = today + timedelta(days=5)
    data = admin_stats.chart_data(series, "th", today, target=5, deadline=deadline)
    first = min(day for day, _ in made)
    assert data.days[0] == first and data.days[-1] == deadline
    for day, status in set(made):
        assert data.started[status][data.days.index(day)] == made.count((day, status))
    assert sum(map(sum, data.started.values())) == len(made)
    submitted_days = sorted(day for day, status in made if status == "submitted")
    assert list(data.registered) == [sum(d <= day for d in submitted_days) for day in data.days if day <= today]
    fig = figure(data)
    bars, progress = fig.axes[:2]
    assert len(bars.patches) == len(data.days) * sum(1 for counts in data.started.values() if any(counts))
    assert len(progress.get_lines()) == 3  # progress, target, deadline
    assert len(figure(replace(data, target=None, deadline=None)).axes[1].get_lines()) == 1

    await boss.say(f"/deadline {deadline.isoformat()}")  # the chart sent now draws it
    await boss.say("/stats chart")
    with_deadline = boss.replies[0].document.data
    assert with_deadline.startswith(PNG_SIGNATURE) and with_deadline != png
    await boss.say("/deadline clear")
    await boss.say("/stats chart")
    assert boss.replies[0].document.data == png


# --- the other ways out: the command line, Telegram, LINE's link ------------------------------

def test_kiddiary_bot_stats_prints_the_same_figures(tmp_path):
    from tests.test_cli import Chat, run_cli, walk_to_otp

    chat = Chat(tmp_path)
    walk_to_otp(chat)
    assert chat.close() == 0
    result = run_cli(tmp_path, "stats")
    assert result.returncode == 0, result.stderr
    for line in ("draft                  1", "total                  1", t("stats_today", "en", submitted=0, decided=0),
                 t("stats_queue", "en", count=0), t("stats_median_wait", "en", wait=t("stats_no_decision", "en")),
                 t("stats_no_directory", "en")):
        assert line in result.stdout, line
    schools = tmp_path / "schools.csv"
    schools.write_text("code,name,province,affiliation\n1054530001,โรงเรียนบ้านหนองบัว,แพร่,สพฐ.\n"
                       "540001,ศูนย์พัฒนาเด็กเล็กบ้านดอนมูล,น่าน,อปท.\n")
    assert run_cli(tmp_path, "import-schools", str(schools)).returncode == 0
    result = run_cli(tmp_path, "stats")
    assert t("stats_provinces_heading", "en", registered=0, schools=2, share="0.0%") in result.stdout
    assert "แพร่ 0/1 (0.0%)" in result.stdout and "น่าน 0/1 (0.0%)" in result.stdout


async def test_on_telegram_the_chart_goes_out_as_a_photo(tmp_path):
    from contextlib import AsyncExitStack

    from bot import web
    from bot.app import open_app
    from bot.config import load_config
    from bot.telegram import TelegramChannel
    from tests.fakes.sms import RecordingSmsGateway
    from tests.fakes.telegram_api import FakeTelegram
    from tests.test_telegram import TOKEN, UNPACED, Harness, User

    fake = FakeTelegram(TOKEN)
    url = await fake.start()
    config = load_config({"KIDDIARY_DATA_DIR": str(tmp_path), "KIDDIARY_TELEGRAM_TOKEN": TOKEN,
                          "KIDDIARY_TELEGRAM_API_URL": url, "KIDDIARY_ADMINS": "telegram:5550009"}, dotenv=None)
    async with AsyncExitStack() as stack:
        app = await stack.enter_async_context(open_app(config, RecordingSmsGateway()))
        channel = TelegramChannel(app.config, app.dispatcher, app.letters, poll_timeout=1)
        channel.policy = UNPACED
        runner = await web.serve(web.make_app(telegram=channel), "127.0.0.1", 0)
        app.delivery.add_sender(channel)
        await channel.start()
        await app.delivery.start()
        try:
            harness = Harness(fake, channel, app, RecordingSmsGateway(), "polling", "")
            officer, admin = User(harness), User(harness, 5550009, "ผู้ดูแล")
            await officer.say("/start")
            replies = await officer.say("/stats chart")
            assert [c.method for c in replies] == ["sendMessage"]
            assert replies[0].params["text"] == t("not_allowed", "th")
            [photo] = await admin.say("/stats chart")
            assert photo.method == "sendPhoto"
            assert photo.files["photo"].startswith(PNG_SIGNATURE)
            Image.open(io.BytesIO(photo.files["photo"])).load()
            assert photo.params["caption"].startswith(t("stats_chart_caption", "th", when=""))
        finally:
            await app.delivery.stop()
            await channel.stop()
            await runner.cleanup()
            await fake.stop()


async def test_on_line_the_chart_is_a_signed_png_link(admin_settings, sms, clock):
    from bot.letter_files import LetterFiles
    from bot.links import LetterLink, LetterLinks

    links = LetterLinks(b"k" * 32, timedelta(days=7))
    files = LetterFiles(admin_settings.repo, b"k" * 32, links, clock)
    token = links.token(LetterLink("chart", 0, 1), clock.now)
    for preview in (False, True):
        png = await files.chart_image(token, preview)
        assert png.startswith(PNG_SIGNATURE)
        assert Image.open(io.BytesIO(png)).width <= (480 if preview else 5000)
    letter_token = links.token(LetterLink("letter", 1, 1), clock.now)
    assert await files.chart_image(letter_token, False) is None  # a letter's link opens no chart
    assert await files.chart_image(token[:-2] + "xx", False) is None
    clock.advance(days=8)
    assert await files.chart_image(token, False) is None  # expired


async def test_on_line_the_chart_goes_out_as_an_image_served_by_our_server(tmp_path):
    from tests.test_line import User as LineUser
    from tests.test_line import running

    async with running(tmp_path) as h:
        admin_id = "U" + "ab" * 16
        h.app.dispatcher.settings = replace(h.app.dispatcher.settings,
                                            admins=frozenset({Address("line", admin_id)}))
        admin = LineUser(h, admin_id)
        [image, caption] = await admin.say("/stats chart")
        assert image["type"] == "image" and caption["type"] == "text"
        assert image["originalContentUrl"].endswith("/page.png") and image["previewImageUrl"].endswith("/preview.png")
        for url in (image["originalContentUrl"], image["previewImageUrl"]):
            status, body, content_type = await h.get(url)
            assert (status, content_type) == (200, "image/png") and body.startswith(PNG_SIGNATURE)
        status, _, _ = await h.get(image["originalContentUrl"].replace("/charts/", "/charts/x"))
        assert status == 404
