"""Start-up as an operator meets it, with real processes: what cannot work stops at once with one
line and status 2 (never a traceback, never a hang); the data folder is its owner's alone; two
processes starting together on an empty folder agree on one key."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import open_app
from bot.cli import main
from bot.config import load_config
from tests.fakes.line_api import ACCESS_TOKEN, CHANNEL_SECRET
from tests.fakes.sms import RecordingSmsGateway
from tests.test_cli import SCRIPT, clean_env

KEY = "start-up-test-key-0123456789-abcdefghijklmnop"
LINE = {"KIDDIARY_LINE_CHANNEL_SECRET": CHANNEL_SECRET, "KIDDIARY_LINE_CHANNEL_ACCESS_TOKEN": ACCESS_TOKEN,
        "KIDDIARY_LINE_API_URL": "http://127.0.0.1:9", "KIDDIARY_LINE_DATA_API_URL": "http://127.0.0.1:9"}
SMS = {"KIDDIARY_SMS_PROVIDER": "webhook", "KIDDIARY_SMS_URL": "http://127.0.0.1:9/sms"}


@dataclass
class Case:
    name: str
    cwd: Path
    args: tuple[str, ...]
    env: dict[str, str]
    expect: str  # in the one line on stderr


@dataclass
class Outcome:
    returncode: int | None  # None: still running at the deadline (killed)
    stderr: str
    seconds: float


def run_together(cases: list[Case], deadline: float = 60) -> dict[str, Outcome]:
    """Start every case at once (the machine is slow, the waits overlap), kill what is still
    running at the deadline."""
    started = time.monotonic()
    procs = {c.name: subprocess.Popen([str(SCRIPT), *c.args], cwd=c.cwd, env=clean_env(**c.env), text=True,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for c in cases}
    outcomes = {}
    for name, proc in procs.items():
        try:
            _, err = proc.communicate(timeout=max(0.1, deadline - (time.monotonic() - started)))
            outcomes[name] = Outcome(proc.returncode, err, time.monotonic() - started)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            outcomes[name] = Outcome(None, err, time.monotonic() - started)
    return outcomes


def assert_one_line(outcome: Outcome, expect: str) -> None:
    assert outcome.returncode == 2, f"status {outcome.returncode} (None: hung): {outcome.stderr[-2000:]}"
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], outcome.stderr[-2000:]


def folder(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    (path / "data").mkdir(parents=True)
    (path / "data" / "secret.key").write_text(KEY + "\n")
    return path


def test_a_database_that_cannot_be_opened_stops_every_command_in_seconds(tmp_path):
    """It used to print its traceback and then hang forever (the database thread kept running).
    Real processes, each command once: a corrupt file, and a folder SQLite cannot write its log in."""
    garbage = os.urandom(8192)
    cases = []
    for command, extra in (("run", {**LINE, **SMS}), ("chat", {}), ("export", {})):
        where = folder(tmp_path, f"corrupt-{command}")
        (where / "data" / "kiddiary.sqlite3").write_bytes(garbage)
        cases.append(Case(f"corrupt {command}", where, (command,), extra, "file is not a database"))
    unwritable = folder(tmp_path, "no-wal")
    (unwritable / "data" / "kiddiary.sqlite3-wal").mkdir()  # SQLite cannot make its write-ahead log
    cases.append(Case("no wal", unwritable, ("stats",), {}, "cannot open the database"))
    if os.geteuid() != 0:  # root writes into a read-only folder anyway
        readonly = folder(tmp_path, "read-only")
        (readonly / "data").chmod(0o500)
        cases.append(Case("read-only", readonly, ("stats",), {}, "data"))  # the lock or the database
    outcomes = run_together(cases)
    for case in cases:
        assert_one_line(outcomes[case.name], case.expect)
    for case in cases[:3]:
        assert (case.cwd / "data" / "kiddiary.sqlite3").read_bytes() == garbage  # left as it was


@pytest.fixture
def shell(monkeypatch, capsys):
    """`kiddiary-bot` called in this process (its `main`), in a folder, with an environment:
    returns the status and what it printed on stderr. The umask it sets is put back."""

    def call(cwd: Path, *args: str, **env: str) -> tuple[int, str]:
        monkeypatch.chdir(cwd)
        for name in [n for n in os.environ if n.startswith("KIDDIARY_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        previous = os.umask(0o022)
        os.umask(previous)
        try:
            status = main(list(args))
        finally:
            os.umask(previous)
        return status, capsys.readouterr().err

    return call


def test_what_cannot_start_says_so_in_one_line(tmp_path, shell):
    not_utf8 = tmp_path / "not-utf8"
    not_utf8.mkdir()
    (not_utf8 / ".env").write_bytes("KIDDIARY_SIGN_IN_URL=https://ตัวอย่าง.th\n".encode("cp874"))
    bad_line = tmp_path / "bad-line"
    bad_line.mkdir()
    (bad_line / ".env").write_text(f'KIDDIARY_HTTP_PORT=9000\nKIDDIARY_SECRET_KEY="{KEY}\n')
    data_is_file = tmp_path / "data-is-file"
    data_is_file.mkdir()
    (data_is_file / "data").write_text("not a folder")
    console_sms = tmp_path / "console-sms"
    console_sms.mkdir()
    other_key = folder(tmp_path, "other-key")
    assert shell(other_key, "stats")[0] == 0  # made with the key of its secret.key
    busy = folder(tmp_path, "busy-port")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        cases = [
            (not_utf8, ("run",), {}, ".env: line 1 is not UTF-8"),
            (bad_line, ("stats",), {}, ".env: line 2 (KIDDIARY_SECRET_KEY) cannot be read"),
            (data_is_file, ("stats",), {}, "KIDDIARY_DATA_DIR: data is a file"),
            (busy, ("run",), {**LINE, **SMS, "KIDDIARY_HTTP_PORT": port}, "is in use by another program"),
            (console_sms, ("run",), LINE, "KIDDIARY_SMS_PROVIDER: 'console' prints one-time codes"),
            (other_key, ("stats",), {"KIDDIARY_SECRET_KEY": KEY + "-not"}, "is not the database's"),
        ]
        for cwd, args, env, expect in cases:
            status, err = shell(cwd, *args, **env)
            lines = [line for line in err.splitlines() if line.strip()]
            assert status == 2 and len(lines) == 1 and expect in lines[0], err
            assert "Traceback" not in err and "start-up-test-key" not in err  # nor the secret of the bad line
    for cwd in (not_utf8, bad_line, data_is_file, console_sms):
        assert not (cwd / "data" / "kiddiary.sqlite3").exists()
    assert (other_key / "data" / "secret.key").read_text() == KEY + "\n"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_data_folder_and_everything_in_it_are_owner_only(tmp_path):
    # A new folder, made by the command line under a permissive umask.
    new = tmp_path / "new"
    new.mkdir()
    result = subprocess.run([str(SCRIPT), "stats"], cwd=new, env=clean_env(), capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL, umask=0o022)
    assert result.returncode == 0, result.stderr
    data = new / "data"
    assert mode(data) == 0o700
    for name in ("kiddiary.sqlite3", "secret.key", "kiddiary.lock"):
        assert mode(data / name) == 0o600, name

    # In the process itself (a test, a service manager's umask): explicit modes, and a database
    # and folder left readable by an older version are closed up.
    old = tmp_path / "old" / "data"
    old.mkdir(parents=True, mode=0o755)
    (old / "kiddiary.sqlite3").touch(mode=0o644)
    previous = os.umask(0o022)
    try:
        config = load_config({"KIDDIARY_DATA_DIR": str(old), "KIDDIARY_SECRET_KEY": KEY}, dotenv=None)
        async with open_app(config, RecordingSmsGateway()) as app:
            async with app.repo.transaction():
                await app.repo.create_registration("line", "U1", "draft", datetime.now(UTC))
            relative = app.files.put(b"%PDF-1.4 a signed letter")
            assert mode(old / "kiddiary.sqlite3-wal") == 0o600
            assert mode(old / "uploads") == mode((old / "uploads" / relative).parent) == 0o700
            assert mode(old / "uploads" / relative) == 0o600
    finally:
        os.umask(previous)
    assert mode(old) == 0o700 and mode(old / "kiddiary.sqlite3") == 0o600


RACER = """
import sys, time
from pathlib import Path
from bot import data_dir
from bot.config import load_config
base, start = Path(sys.argv[1]), float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
for i in range(int(sys.argv[3])):
    config = load_config({"KIDDIARY_DATA_DIR": str(base / str(i) / "data")}, dotenv=None)
    try:
        data_dir.prepare(config)
        print(i, data_dir.with_keys(config).secret_key)
    except Exception as e:
        print(i, "failed:", e)
"""


def test_processes_starting_together_on_an_empty_folder_agree_on_one_key(tmp_path):
    """The key file used to be made in place: a process starting beside another failed (the file
    existed) or read it half-written. 4 processes walk the same 150 empty folders at the same
    pace, so they keep meeting on one (the old code failed about 1 start in 14 here)."""
    folders, start = 150, time.time() + 2  # after every interpreter has started
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path), str(start), str(folders)],
                              cwd=Path(__file__).parents[1], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in results]
    seen: dict[str, set[str]] = {}
    for out, _ in results:
        for line in out.splitlines():
            number, key = line.split(" ", 1)
            seen.setdefault(number, set()).add(key)
    for number in map(str, range(folders)):
        data = tmp_path / number / "data"
        assert seen[number] == {(data / "secret.key").read_text().strip()}, seen[number]  # no "failed:"
        assert [p.name for p in data.iterdir()] == ["secret.key"]  # no temporary file left behind


@pytest.mark.parametrize("count", [3])
def test_the_whole_command_started_several_times_at_once(tmp_path, count):
    procs = [subprocess.Popen([str(SCRIPT), "stats"], cwd=tmp_path, env=clean_env(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(count)]
    errors = [p.communicate(timeout=90)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * count, errors
