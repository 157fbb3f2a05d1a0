"""`kiddiary-bot deadline` and `kiddiary-bot broadcast` as an operator runs them."""

from __future__ import annotations

import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.test_cli import SCRIPT, clean_env


def shell(folder: Path, *args: str, answer: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], cwd=folder, env=clean_env(KIDDIARY_DATA_DIR=str(folder / "data")),
                          input=answer, capture_output=True, text=True, timeout=60)


def rows(folder: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(folder / "data" / "kiddiary.sqlite3")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_deadline_from_the_shell(tmp_path):
    assert shell(tmp_path, "deadline").stdout.strip() == "no deadline is set"
    for bad in ("31/12/2026", "2026-13-01"):
        result = shell(tmp_path, "deadline", bad)
        assert result.returncode == 2 and "YYYY-MM-DD" in result.stderr and "Traceback" not in result.stderr
    result = shell(tmp_path, "deadline", "2020-01-01")
    assert result.returncode == 2 and "already passed" in result.stderr
    assert rows(tmp_path, "SELECT * FROM settings") == []

    day = (datetime.now(UTC) + timedelta(days=40)).date().isoformat()
    result = shell(tmp_path, "deadline", day)
    assert result.returncode == 0 and f"deadline set to {day}" in result.stdout and "7, 3, 1" in result.stdout
    [(key, value, by)] = rows(tmp_path, "SELECT key, value, changed_by FROM settings")
    assert (key, value) == ("deadline", day) and by.startswith("shell:")
    assert shell(tmp_path, "deadline").stdout.strip() == f"deadline: {day} (Asia/Bangkok)"
    assert shell(tmp_path, "deadline", "clear").returncode == 0
    assert rows(tmp_path, "SELECT * FROM settings") == []


def test_broadcast_from_the_shell_counts_asks_and_refuses_what_it_cannot_send(tmp_path):
    shell(tmp_path, "deadline")  # makes the database
    now = "2026-11-28T03:00:00.000000+00:00"
    db = sqlite3.connect(tmp_path / "data" / "kiddiary.sqlite3")
    with db:
        db.executemany("INSERT INTO conversations (channel, user_id, state, lang, blocked, updated_at)"
                       " VALUES (?, ?, 'start', 'th', ?, ?)",
                       [("telegram", "101", 0, now), ("telegram", "102", 1, now), ("line", "U" + "a" * 32, 0, now)])
    db.close()

    cases = [
        (("broadcast", "everyone", "--text", "hi"), "unknown segment 'everyone'"),
        (("broadcast", "แพร", "--text", "hi"), "did you mean the province แพร่?"),
        (("broadcast", "all", "--text", "hi {name}"), "Unknown {name}"),
        (("broadcast", "all", "--file", str(tmp_path / "missing.txt")), "no such file"),
    ]
    for args, said in cases:
        result = shell(tmp_path, *args)
        assert result.returncode == 2 and said in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr

    result = shell(tmp_path, "broadcast", "all", "--text", "ประกาศ", answer="n\n")
    assert "all: 2 people (line 1, telegram 1); 1 who blocked the bot are skipped" in result.stdout
    assert result.returncode == 1 and "not sent" in result.stdout
    assert rows(tmp_path, "SELECT * FROM broadcasts") == []

    message = tmp_path / "message.txt"
    message.write_text("\ufeffขยายเวลาถึง {deadline}\nบรรทัดที่สอง\n", encoding="utf-8")
    result = shell(tmp_path, "broadcast", "all", "--file", str(message), answer="y\n")
    assert result.returncode == 0 and "broadcast #1 started for 3 people" in result.stdout
    assert rows(tmp_path, "SELECT text, status FROM broadcasts") == [("ขยายเวลาถึง {deadline}\nบรรทัดที่สอง", "sending")]
    assert sorted(rows(tmp_path, "SELECT user_id, state FROM broadcast_recipients")) == [
        ("101", "pending"), ("102", "blocked"), ("U" + "a" * 32, "pending")]
