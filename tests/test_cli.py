"""`kiddiary-bot` as a newcomer runs it: a subprocess, lines in on stdin, the bot's words on stdout."""

from __future__ import annotations

import os
import queue
import re
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from handlers.steps import TOTAL_STEPS
from templates import text as t
from tests.phone_photos import signed_page

SCRIPT = Path(sys.executable).with_name("kiddiary-bot")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIDDIARY_")}
    env.update(extra)
    return env


class Chat:
    """A running `kiddiary-bot` with a reader thread, so a test can wait for what it prints."""

    def __init__(self, cwd: Path, *args: str, **env: str) -> None:
        assert SCRIPT.exists(), "the console script is installed by `pip install -e .`"
        self.proc = subprocess.Popen(
            [str(SCRIPT), *(args or ("chat",))], cwd=cwd, env=clean_env(**env), text=True, encoding="utf-8",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 20) -> str:
        """Read until `pattern` (a regex) has appeared; return everything read since the last wait."""
        deadline, chunk = time.monotonic() + timeout, ""
        while not re.search(pattern, chunk):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{pattern!r} not printed; got:\n{chunk}")
            try:
                chunk += self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
        self.seen += chunk
        return chunk

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]

    def close(self) -> int:
        self.proc.stdin.close()  # type: ignore[union-attr]
        return self.proc.wait(timeout=20)


def step(n: int) -> str:
    return f"ขั้นที่ {n}/{TOTAL_STEPS}"


def walk_to_otp(chat: Chat) -> str:
    """Answer up to the OTP; return the code the console gateway printed."""
    chat.wait_for(step(1))
    chat.send("1")  # [1] ยอมรับ
    chat.wait_for(step(2))
    chat.send("1")  # [1] สพฐ.
    for answer, next_step in (
        ("1054530001", 3), ("โรงเรียนบ้านหนองบัว", 3), ("แพร่", 4), ("tsl1234", 5), ("ไม่มี", 6),
        ("นางสาวสมศรี ใจดี", 7), ("1-2345-45678-78-1", 8),
    ):
        chat.send(answer)
        chat.wait_for(step(next_step))
    chat.send("081-234-5678")
    # The question and the SMS come from different senders: in either order.
    printed = chat.wait_for(rf"(?s)(?=.*{step(9)})(?=.*📱 SMS → 081-234-5678: .*?\d{{6}})")
    return re.search(r"📱 SMS → 081-234-5678: .*?(\d{6})", printed).group(1)  # type: ignore[union-attr]


def test_a_whole_registration_in_the_console_chat(tmp_path):
    chat = Chat(tmp_path)
    code = walk_to_otp(chat)
    chat.send(code)
    summary = chat.wait_for(step(10) + r"[\s\S]*\[1\] ยืนยัน")
    assert "1-2345-xxxxx-xx-1" in summary and "081-234-5678 (ยืนยันแล้ว)" in summary
    chat.send("1")  # [1] ยืนยัน
    done = chat.wait_for(r"📄 (\S+\.pdf)")
    assert "ผู้อำนวยการโรงเรียน" in done and step(11) in done
    letter = tmp_path / re.search(r"📄 (\S+\.pdf)", done).group(1)  # type: ignore[union-attr]
    assert letter.read_bytes().startswith(b"%PDF-")

    photo = tmp_path / "signed.png"  # the letter, signed, as a phone would see it
    signed_page(letter.read_bytes()).save(photo)
    chat.send(f"/photo {photo}")
    received = chat.wait_for(step(12))
    assert "คิวอาร์โค้ดตรงกับการลงทะเบียน" in received
    chat.send("/quit")
    assert chat.proc.wait(timeout=20) == 0
    assert (tmp_path / "data" / "kiddiary.sqlite3").exists()
    assert len(list((tmp_path / "data" / "uploads").rglob("*.bin"))) == 1


def test_two_processes_one_data_folder(tmp_path):
    first = Chat(tmp_path)
    code = walk_to_otp(first)
    assert first.close() == 0

    second = Chat(tmp_path)  # greets nobody anew: it asks the question where the officer stopped
    resumed = second.wait_for(step(9))
    assert t("greeting", "th").splitlines()[0] not in resumed and t("welcome_back", "th") in resumed
    second.send(code)
    second.wait_for("ยืนยันหมายเลข 081-234-5678 เรียบร้อยแล้ว")
    assert second.close() == 0


def test_run_without_channels_says_so_and_starts_the_console(tmp_path):
    chat = Chat(tmp_path, "run")
    first = chat.wait_for(step(1))
    assert first.splitlines()[0].startswith("No chat channel is configured")
    assert chat.close() == 0


def test_console_attachments_and_roles(tmp_path):
    photo = tmp_path / "letter.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    chat = Chat(tmp_path)
    chat.wait_for(step(1))
    chat.send("1")
    chat.send("1")
    chat.wait_for(step(3))
    chat.send(f"/photo {photo}")
    chat.wait_for(t("expect_text", "th", got=t("kind_photo", "th")))
    chat.send("/photo /no/such/file.jpg")
    chat.wait_for("no such file")
    chat.send("/stats")
    chat.wait_for(t("not_allowed", "th"))
    chat.send("/as admin")
    chat.send("/stats")
    chat.wait_for("รวม 1")
    chat.send("/as officer somchai")
    chat.send("สวัสดี")
    chat.wait_for(step(1))  # a different officer starts from the beginning
    assert chat.close() == 0


def test_the_secret_key_is_generated_once_readable_by_the_owner_only(tmp_path):
    assert Chat(tmp_path).close() == 0
    key_file = tmp_path / "data" / "secret.key"
    key = key_file.read_text()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert Chat(tmp_path).close() == 0
    assert key_file.read_text() == key


def test_dotenv_is_read(tmp_path):
    (tmp_path / ".env").write_text("KIDDIARY_DATA_DIR=elsewhere\n")
    assert Chat(tmp_path).close() == 0
    assert (tmp_path / "elsewhere" / "kiddiary.sqlite3").exists()


@pytest.mark.parametrize("env, variable", [
    ({"KIDDIARY_HTTP_PORT": "eighty"}, "KIDDIARY_HTTP_PORT"),
    ({"KIDDIARY_HTTP_PORT": "70000"}, "KIDDIARY_HTTP_PORT"),
    ({"KIDDIARY_PUBLIC_URL": "example.org"}, "KIDDIARY_PUBLIC_URL"),
    ({"KIDDIARY_ENV": "production"}, "KIDDIARY_SMS_PROVIDER"),
    ({"KIDDIARY_SMS_PROVIDER": "carrier-pigeon"}, "KIDDIARY_SMS_PROVIDER"),
    ({"KIDDIARY_REVIEWERS": "telegram"}, "KIDDIARY_REVIEWERS"),
    ({"KIDDIARY_ADMINS": "fax:123"}, "KIDDIARY_ADMINS"),
    ({"KIDDIARY_LINE_CHANNEL_SECRET": "abc"}, "KIDDIARY_LINE_CHANNEL_ACCESS_TOKEN"),
    ({"KIDDIARY_TELEGRAM_TOKEN": "not-a-token"}, "KIDDIARY_TELEGRAM_TOKEN"),
    ({"KIDDIARY_SECRET_KEY": "short"}, "KIDDIARY_SECRET_KEY"),
])
def test_a_bad_setting_stops_start_up_with_one_line(tmp_path, env, variable):
    result = subprocess.run(
        [str(SCRIPT), "run"], cwd=tmp_path, env=clean_env(**env), capture_output=True, text=True, timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], result.stderr
    assert not (tmp_path / "data" / "kiddiary.sqlite3").exists()


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_import_schools_all_or_nothing_then_used_by_the_chat(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,province,affiliation\n1054530001,โรงเรียนบ้านหนองบัว,แพร่,สพฐ.\n12,x,Atlantis,private\n")
    result = run_cli(tmp_path, "import-schools", str(bad))
    assert result.returncode == 1
    assert "line 3" in result.stderr and "province" in result.stderr and "nothing imported" in result.stderr

    good = tmp_path / "good.csv"
    good.write_text("code,name,province,affiliation\n1054530001,โรงเรียนบ้านหนองบัว,แพร่,สพฐ.\n"
                    "540001,ศูนย์พัฒนาเด็กเล็กบ้านดอนมูล,จ.แพร่,อปท.\n")
    result = run_cli(tmp_path, "import-schools", str(good))
    assert result.returncode == 0 and "imported 2 schools" in result.stdout

    chat = Chat(tmp_path)
    chat.wait_for(step(1))
    chat.send("1")
    chat.send("1")
    chat.wait_for(step(3))
    chat.send("1054530001")
    found = chat.wait_for(step(4))
    assert "พบในทะเบียนสถานศึกษา: โรงเรียนบ้านหนองบัว จังหวัดแพร่" in found
    assert chat.close() == 0


def test_stats_and_export(tmp_path):
    chat = Chat(tmp_path)
    walk_to_otp(chat)
    assert chat.close() == 0
    result = run_cli(tmp_path, "stats")
    assert result.returncode == 0
    assert re.search(r"draft\s+1", result.stdout) and re.search(r"total\s+1", result.stdout)
    result = run_cli(tmp_path, "export", "--status", "draft", "--include-national-id",
                     "--output", str(tmp_path / "out.csv"))
    assert result.returncode == 0, result.stderr
    rows = (tmp_path / "out.csv").read_text(encoding="utf-8-sig").splitlines()
    assert rows[0].startswith("ref,status") and len(rows) == 2
    assert "1234545678781" in rows[1] and "โรงเรียนบ้านหนองบัว" in rows[1]


async def test_run_serves_telegram_and_line_together_and_stops_cleanly(tmp_path):
    """`kiddiary-bot run` as an operator starts it: both channels, the HTTP server, SIGTERM."""
    import asyncio
    import json as json_
    import signal
    import socket

    import aiohttp

    from tests.fakes.line_api import ACCESS_TOKEN, CHANNEL_SECRET, FakeLine, webhook_body
    from tests.fakes.telegram_api import FakeTelegram

    telegram, line = FakeTelegram("123456:RUN-test-token-for-the-fake-api"), FakeLine()
    await telegram.start()
    await line.start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = clean_env(
        KIDDIARY_TELEGRAM_TOKEN=telegram.token, KIDDIARY_TELEGRAM_API_URL=telegram.url,
        KIDDIARY_LINE_CHANNEL_SECRET=CHANNEL_SECRET, KIDDIARY_LINE_CHANNEL_ACCESS_TOKEN=ACCESS_TOKEN,
        KIDDIARY_LINE_API_URL=line.url, KIDDIARY_LINE_DATA_API_URL=line.url,
        KIDDIARY_HTTP_PORT=str(port), KIDDIARY_PUBLIC_URL=f"http://127.0.0.1:{port}",
        # Not the console gateway: `run` refuses it beside LINE and Telegram. Nothing is sent here.
        KIDDIARY_SMS_PROVIDER="webhook", KIDDIARY_SMS_URL="http://127.0.0.1:9/sms",
    )
    proc = await asyncio.create_subprocess_exec(str(SCRIPT), "run", cwd=tmp_path, env=env,
                                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):  # until the server answers
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            user = {"id": 42, "is_bot": False, "first_name": "ครู"}
            telegram.push({"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "/start", "from": user,
                                                        "chat": {"id": 42, "type": "private"}}})
            await telegram.wait_for(lambda calls: len(telegram.sent("sendMessage")) >= 2, timeout=30)
            event = {"type": "follow", "mode": "active", "timestamp": int(time.time() * 1000),
                     "source": {"type": "user", "userId": "U42"}, "webhookEventId": "01RUN0000000000001",
                     "deliveryContext": {"isRedelivery": False}, "replyToken": line.reply_token(),
                     "follow": {"isUnblocked": False}}
            body = webhook_body(event)
            async with session.post(f"http://127.0.0.1:{port}/line/webhook", data=body.encode(),
                                    headers={"X-Line-Signature": FakeLine.sign(body),
                                             "Content-Type": "application/json"}) as response:
                assert response.status == 200
            for _ in range(200):
                if line.sent("/v2/bot/message/reply"):
                    break
                await asyncio.sleep(0.05)
        [reply] = line.sent("/v2/bot/message/reply")
        assert t("greeting", "th").splitlines()[0] in json_.dumps(reply.body, ensure_ascii=False)
        assert t("greeting", "th").splitlines()[0] in telegram.sent("sendMessage")[0].params["text"]
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
        logged = (await proc.stderr.read()).decode()
        assert "HTTP server on" in logged and telegram.token not in logged  # the bot token stays out of logs
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await telegram.stop()
        await line.stop()
